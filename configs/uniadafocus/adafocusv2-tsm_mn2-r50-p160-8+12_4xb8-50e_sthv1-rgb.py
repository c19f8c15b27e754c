# AdaFocusV2-TSM (160², 8 glance + 12 focus frames) on Something-Something V1: released `sthv1_p160.pth.tar`,
# top-1 48.6 at 27.5 GFLOPs. Everything else as in the 128² config.
_base_ = ['./adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_sthv1-rgb.py']
model = dict(patch_size=160)
