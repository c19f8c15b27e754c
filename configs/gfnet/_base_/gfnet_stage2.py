# Stage II: only the patch policy, PPO (gamma 0.7, clip 0.2, c1 0.5, c2 0.01, one epoch per batch),
# Adam 3e-4 without schedule or weight decay, 15 epochs; encoders and fC frozen in eval mode. The
# The model configs set train_stage=2 and the contrastive reward (Eq. 8) of the T-PAMI paper
# ('increment' is the official code's); PPO hyper-parameters are the model's defaults.
optim_wrapper = dict(optimizer=dict(type='Adam', lr=3e-4, betas=(0.9, 0.999), weight_decay=0))
param_scheduler = []
train_cfg = dict(by_epoch=True, max_epochs=15, val_interval=1)
