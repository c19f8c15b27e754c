# Uni-AdaFocus (128²) on Mini-Kinetics (200 classes, top-1; paper 75.8 at 27.2 GFLOPs). Paper: batch 64, lr 0.004;
# the released code used batch 48, lr 0.003. wd 1e-4, alpha 0.75, FC dropout 0.1 (code).
_base_ = ['mmaction::_base_/default_runtime.py', './_base_/rawframes_t48.py',
          './_base_/uniadafocus_mn2-r50.py']
data_root = 'data/mini_kinetics/frames'
model = dict(patch_size=128, num_classes=200, size_reg=0.75)
train_dataloader = dict(batch_size=16, dataset=dict(
    ann_file='data/mini_kinetics/mini_train_videofolder.txt', data_prefix=dict(img=data_root),
    filename_tmpl='img_{:05d}.jpg', multi_class=False))
val_dataloader = dict(batch_size=16, dataset=dict(
    ann_file='data/mini_kinetics/mini_val_videofolder.txt', data_prefix=dict(img=data_root),
    filename_tmpl='img_{:05d}.jpg', multi_class=False))
test_dataloader = val_dataloader
val_evaluator = [dict(type='AccMetric', metric_list=('top_k_accuracy', )),  # a list replaces the base's
                 dict(type='AnytimeAccuracy')]
test_evaluator = val_evaluator
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='top1')]
optim_wrapper = dict(optimizer=dict(lr=0.004, weight_decay=1e-4))
auto_scale_lr = dict(base_batch_size=64)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1,
                                     save_best='auto'))
