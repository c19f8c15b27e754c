# AdaFocusV2 (96²) on ActivityNet v1.3, ResNet-50 glance at 96 x 96 (released `actnet_p96_res50`: mAP 77.5 at
# 24.8 GFLOPs). Everything else as in the 128² config.
_base_ = ['./adafocusv2_r50-r50-p128_4xb8-50e_activitynet-rgb.py']
model = dict(patch_size=96)
