# GFNet stage II on the demo set: only the patch policy, PPO with the contrastive reward (Eq. 8);
# encoders and classifier frozen in eval mode. Starts from the stage-I checkpoint.
# The rollouts use a second, disjoint sample of the demo generator (seed 1):
#   python tools/misc/make_demo_data.py --root data/demo_gfnet_ppo --tasks cls --num-train 2000 \
#       --num-val 10 --seed 1
# On the stage-I training images the small-data classifier is already right from the glance (it has
# memorised them), so there the rewards carry almost no signal about where the digit is.
_base_ = ['./_base_/gfnet-r18w16-p64-t3_demo.py']
model = dict(train_stage=2, reward='contrastive',
             ppo=dict(gamma=0.7, clip=0.2, value_coef=0.5, entropy_coef=0.01))
load_from = 'work_dirs/gfnet-r18w16-p64-t3_stage1_1xb32-8e_demo-cls/epoch_8.pth'
train_dataloader = dict(dataset=dict(data_root='data/demo_gfnet_ppo/cls'))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3, betas=(0.9, 0.999)))
param_scheduler = []
train_cfg = dict(by_epoch=True, max_epochs=6, val_interval=2)
