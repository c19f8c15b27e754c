_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
# the authors keep the checkpoint with the best final-exit val accuracy; we keep it and the last one
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2,
                                     save_best='accuracy/top1'))
randomness = dict(seed=0, deterministic=False)
