# FF-Net baseline of MGNet, Wide-ResNet-50-2, ImageNet100: one glimpse at full resolution (T = 1, M = 1) with the
# same head, trained with the same recipe. Paper (Table 1): 11.413 GMACs, top-1 83.10 %.
_base_ = ['./mgnet-wrn50-2-4x96_4xb64-onecycle-400e_in100.py']
model = dict(num_glimpses=1, glimpse_size=None, grad_scale=1.0, aux_weight=0.0)
