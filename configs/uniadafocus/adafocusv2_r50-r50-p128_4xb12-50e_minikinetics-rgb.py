# AdaFocusV2 (128²) on Mini-Kinetics (200 classes, top-1), ResNet-50 glance at 96 x 96 (released
# `minik_p128_res50`: top-1 74.0 at 34.1 GFLOPs). Released recipe: batch 48, lr 0.003, wd 1e-4, `--sample`.
_base_ = ['./adafocusv2_r50-r50-p128_4xb8-50e_activitynet-rgb.py']
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
