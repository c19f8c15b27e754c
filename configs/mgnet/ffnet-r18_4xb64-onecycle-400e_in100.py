# FF-Net baseline of MGNet, ResNet-18, ImageNet100: one glimpse at full resolution (T = 1, M = 1) with the
# same head, trained with the same recipe. Paper (Table 1): 1.815 GMACs, top-1 80.24 %.
_base_ = ['./mgnet-r18-4x96_4xb64-onecycle-400e_in100.py']
model = dict(num_glimpses=1, glimpse_size=None, grad_scale=1.0, aux_weight=0.0)
