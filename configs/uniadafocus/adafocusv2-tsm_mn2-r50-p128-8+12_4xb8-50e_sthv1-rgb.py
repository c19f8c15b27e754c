# AdaFocusV2-TSM (128², 8 glance + 12 focus frames) on Something-Something V1: released `sthv1_p128.pth.tar`,
# top-1 47.0 at 18.5 GFLOPs. Recipe and data: _base_/adafocusv2_tsm.py.
_base_ = ['./_base_/adafocusv2_tsm.py']
model = dict(patch_size=128)
