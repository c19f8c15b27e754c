# Stage III: fine-tune fG (unless frozen), fL, fC with locations sampled from the fixed policy
# (std 0.1; the model configs set train_stage=3); as stage I but with fC's LR 0.01 (lr_mult = 0.01 / encoder LR; ResNet/DenseNet: 1).
_base_ = ['./gfnet_stage1.py']
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=1.0)}))
