# Uni-AdaFocus (160²) on FCVID (239 classes, mAP; paper Fig. 9). Batch 64, lr 0.004, wd 1e-4, alpha 1.0.
_base_ = ['mmaction::_base_/default_runtime.py', './_base_/rawframes_t48.py',
          './_base_/uniadafocus_mn2-r50.py']
data_root = 'data/fcvid/frames'
model = dict(patch_size=160, num_classes=239, size_reg=1.0)
train_dataloader = dict(batch_size=16, dataset=dict(
    ann_file='data/fcvid/fcvid_train_split.txt', data_prefix=dict(img=data_root), num_classes=239))
val_dataloader = dict(batch_size=16, dataset=dict(
    ann_file='data/fcvid/fcvid_val_split.txt', data_prefix=dict(img=data_root), num_classes=239))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(lr=0.004, weight_decay=1e-4))
auto_scale_lr = dict(base_batch_size=64)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='auto'))
