# AdaFocusV2 (128²) on Mini-Kinetics (200 classes, top-1), MobileNet-V2 glance (released `minik_p128_mbv2`:
# top-1 75.4 at 27.0 GFLOPs). Released recipe: batch 48, lr 0.003, wd 1e-4, `--sample`.
_base_ = ['./adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py']
data_root = 'data/mini_kinetics/frames'
model = dict(num_classes=200)
train_dataloader = dict(batch_size=12, dataset=dict(
    ann_file='data/mini_kinetics/mini_train_videofolder.txt', data_prefix=dict(img=data_root),
    filename_tmpl='img_{:05d}.jpg', multi_class=False))
val_dataloader = dict(batch_size=12, dataset=dict(
    ann_file='data/mini_kinetics/mini_val_videofolder.txt', data_prefix=dict(img=data_root),
    filename_tmpl='img_{:05d}.jpg', multi_class=False))
test_dataloader = val_dataloader
val_evaluator = [dict(type='AccMetric', metric_list=('top_k_accuracy', )),
                 dict(type='AnytimeAccuracy')]
test_evaluator = val_evaluator
custom_hooks = [dict(type='BudgetEvalHook', fit_on='train', confidence='neg_entropy',
                     ratios='uniadafocus', metric='top1')]
optim_wrapper = dict(optimizer=dict(lr=0.003))
