# Uni-AdaFocus (96²) on Mini-Kinetics (200 classes, top-1; paper Fig. 9). Paper: batch 64, lr 0.004;
# the released code used batch 48, lr 0.003. wd 1e-4, alpha 0.75, FC dropout 0.1 (code).
# Everything but the patch size as in uniadafocus_mn2-r50-p128_4xb16-50e_minikinetics-rgb.py.
_base_ = ['./uniadafocus_mn2-r50-p128_4xb16-50e_minikinetics-rgb.py']
model = dict(patch_size=96)
