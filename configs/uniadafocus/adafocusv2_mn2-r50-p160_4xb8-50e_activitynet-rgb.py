# AdaFocusV2 (160²) on ActivityNet v1.3, MobileNet-V2 glance (released `actnet_p160_mbv2`: mAP 79.9 at 39.0
# GFLOPs). Everything else as in the 128² config (recipe, `--sample` frame order).
_base_ = ['./adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py']
model = dict(patch_size=160)
