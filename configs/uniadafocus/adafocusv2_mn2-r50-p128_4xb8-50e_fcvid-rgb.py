# AdaFocusV2 (128²) on FCVID (239 classes, mAP), MobileNet-V2 glance (released `fcvid_p128_mbv2`: mAP 85.0
# at 27.0 GFLOPs). Released recipe as on ActivityNet: batch 32, lr 0.002, wd 1e-4, `--sample`.
_base_ = ['./adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py']
data_root = 'data/fcvid/frames'
model = dict(num_classes=239)
train_dataloader = dict(dataset=dict(
    ann_file='data/fcvid/fcvid_train_split.txt', data_prefix=dict(img=data_root), num_classes=239))
val_dataloader = dict(dataset=dict(
    ann_file='data/fcvid/fcvid_val_split.txt', data_prefix=dict(img=data_root), num_classes=239))
test_dataloader = val_dataloader
