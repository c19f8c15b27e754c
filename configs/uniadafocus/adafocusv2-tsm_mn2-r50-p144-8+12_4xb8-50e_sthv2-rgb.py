# AdaFocusV2-TSM (144², 8 glance + 12 focus frames) on Something-Something V2: released `sthv2_p144.pth.tar`,
# top-1 60.5 at 23.5 GFLOPs. Everything else as in the 128² config.
_base_ = ['./adafocusv2-tsm_mn2-r50-p128-8+12_4xb8-50e_sthv2-rgb.py']
model = dict(patch_size=144)
