# AdaFocusV2 (160²) on ActivityNet v1.3, ResNet-50 glance at 96 x 96 (released `actnet_p160_res50`: mAP 80.2
# at 46.1 GFLOPs). Everything else as in the 128² config.
_base_ = ['./adafocusv2_r50-r50-p128_4xb8-50e_activitynet-rgb.py']
model = dict(patch_size=160)
