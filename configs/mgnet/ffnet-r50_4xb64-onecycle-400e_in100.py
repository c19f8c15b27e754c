# FF-Net baseline of MGNet, ResNet-50, ImageNet100: one glimpse at full resolution (T = 1, M = 1) with the
# same head, trained with the same recipe. Paper (Table 1): 4.104 GMACs, top-1 82.56 %.
_base_ = ['./mgnet-r50-4x96_4xb64-onecycle-400e_in100.py']
model = dict(num_glimpses=1, glimpse_size=None, grad_scale=1.0, aux_weight=0.0)
