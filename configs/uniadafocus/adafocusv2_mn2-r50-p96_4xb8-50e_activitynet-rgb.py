# AdaFocusV2 (96²) on ActivityNet v1.3, MobileNet-V2 glance (released `actnet_p96_mbv2`: mAP 77.4 at 17.6
# GFLOPs). Everything else as in the 128² config (recipe, `--sample` frame order).
_base_ = ['./adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py']
model = dict(patch_size=96)
