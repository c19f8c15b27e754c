# FF-Net baseline, ResNet-18 without the stem max-pool, Tiny ImageNet at 64 x 64. Paper (Table 3): 0.5657 GMACs,
# top-1 57.14 %.
_base_ = ['./mgnet-r18-nomaxpool-3x32_4xb64-onecycle-400e_tiny-imagenet.py']
model = dict(num_glimpses=1, glimpse_size=None, grad_scale=1.0, aux_weight=0.0)
