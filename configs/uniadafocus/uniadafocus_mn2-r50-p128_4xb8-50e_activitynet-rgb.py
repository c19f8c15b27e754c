# Uni-AdaFocus (128²) on ActivityNet v1.3, paper mAP 80.7 at 27.2 GFLOPs w/o sample-wise;
# 80.4 at 18.1 and 78.3 at 9.1 GFLOPs with it (Table 2).
# Budgeted early exit (thresholds fitted on the training set): tools/test.py CONFIG CKPT --budget 9.1 18.1
_base_ = ['mmaction::_base_/default_runtime.py', './_base_/rawframes_t48.py',
          './_base_/uniadafocus_mn2-r50.py']
model = dict(patch_size=128, num_classes=200, size_reg=1.0)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='auto'))
