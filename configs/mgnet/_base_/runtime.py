_base_ = ['mmpretrain::_base_/default_runtime.py']
custom_imports = dict(imports=['mmdynamic.models'], allow_failed_imports=False)
# the authors keep the checkpoint with the best final-exit val accuracy; we keep it and the last one
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2,
                                     save_best='accuracy/top1'))
randomness = dict(seed=0, deterministic=False)
# MMEngine's log processor averages every key matching 'time' over its window, 'anytime/...' included:
# log the current anytime accuracy instead of the mean over the last validations
log_processor = dict(mean_pattern=r'.*(loss|(?<!any)time|data_time|grad_norm).*')
