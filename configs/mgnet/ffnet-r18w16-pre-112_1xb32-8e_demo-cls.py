# The FF-Net baseline of the pretrained-encoder MGNet demo at equal cost: one glimpse, the whole canvas
# resized to 112 px (112^2 = 4 x 56^2 pixels: the MACs of MGNet's four 56 px glimpses; the paper's FF-Net
# runs at full resolution, glimpse_size=None), the same encoder start, head and schedule.
_base_ = ['./mgnet-r18w16-pre-4x56_1xb32-8e_demo-cls.py']
model = dict(num_glimpses=1, glimpse_size=112, grad_scale=1.0, aux_weight=0.0)
