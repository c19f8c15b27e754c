# The FF-Net baseline of MGNet on the demo classification set: the same model with one glimpse at full
# resolution (T = 1, M = 1: the whole 128 px canvas through the identity glimpse) and the same head
# (attention over one token + LayerNorm + ReLU + global classifier), trained with the same schedule.
_base_ = ['./mgnet-r18-w16-4x56_1xb32-30e_demo-cls.py']
model = dict(num_glimpses=1, glimpse_size=None, grad_scale=1.0, aux_weight=0.0)
