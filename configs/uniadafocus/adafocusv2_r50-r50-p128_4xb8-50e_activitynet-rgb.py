# AdaFocusV2 (128²) on ActivityNet v1.3 with the ResNet-50 glance (official `--glance_arch res50`; released
# `actnet_p128_res50`: mAP 78.9 at 34.1 GFLOPs): f_G is a ResNet-50 on every frame resized to 96 x 96
# (bilinear, align_corners=True: 3 x 3 x 2048 maps, policy Linear 64*3*3 = 576 -> 2048, f_C MLP input
# 2048 + 2048); the 128 x 128 patches for the ResNet-50 f_L still come from the 224 px frames. Same recipe
# and `--sample` frame order as the MobileNet-V2 config. The released recipe initialises f_G from
# `Initialization_model_prime_resnet50_patch_size_96.pth` (a torchvision ResNet-50 state_dict): point
# model.backbone.pretrained at it to reproduce the training; ImageNet weights otherwise.
_base_ = ['./adafocusv2_mn2-r50-p128_4xb8-50e_activitynet-rgb.py']
model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=50, pretrained='torchvision://resnet50'),
    global_channels=2048, feature_size=3, glance_size=96)
