# Uni-AdaFocus (96²) on ActivityNet v1.3, paper mAP 79.3 (Table 3).
# Budgeted early exit (thresholds fitted on the training set): tools/test.py CONFIG CKPT --budget 9.1
# Everything but the patch size as in uniadafocus_mn2-r50-p128_4xb8-50e_activitynet-rgb.py.
_base_ = ['./uniadafocus_mn2-r50-p128_4xb8-50e_activitynet-rgb.py']
model = dict(patch_size=96)
