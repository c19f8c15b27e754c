# Uni-AdaFocus (96²) on FCVID (239 classes, mAP; paper Fig. 9). Batch 64, lr 0.004, wd 1e-4, alpha 1.0.
# Everything but the patch size as in uniadafocus_mn2-r50-p128_4xb16-50e_fcvid-rgb.py.
_base_ = ['./uniadafocus_mn2-r50-p128_4xb16-50e_fcvid-rgb.py']
model = dict(patch_size=96)
