# FF-Net baseline of MGNet, ResNeXt-50 32x4d, ImageNet100: one glimpse at full resolution (T = 1, M = 1) with the
# same head, trained with the same recipe. Paper (Table 1): 4.246 GMACs, top-1 82.68 %.
_base_ = ['./mgnet-rx50-32x4d-4x96_4xb64-onecycle-400e_in100.py']
model = dict(num_glimpses=1, glimpse_size=None, grad_scale=1.0, aux_weight=0.0)
