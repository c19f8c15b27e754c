# GFNet stage II on the demo set: only the patch policy, PPO with the contrastive reward (Eq. 8);
# encoders and classifier frozen in eval mode. Starts from the stage-I checkpoint.
# The rollouts use a second, disjoint sample of the demo generator (seed 1, no distractors):
#   python tools/misc/make_demo_data.py --root data/demo_gfnet_ppo --tasks cls --num-train 2000 \
#       --num-val 10 --num-distractors 0 --seed 1
# On the stage-I training images the small-data classifier has partly memorised the answer from the
# glance, which leaves little reward for finding the card (demo-only: the paper reuses ImageNet's
# training set).
_base_ = ['./_base_/gfnet-r18w16-p48-t3_demo.py']
model = dict(train_stage=2, reward='contrastive',
             ppo=dict(gamma=0.7, clip=0.2, value_coef=0.5, entropy_coef=0.01))
load_from = 'work_dirs/gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-cls/epoch_6.pth'
train_dataloader = dict(dataset=dict(data_root='data/demo_gfnet_ppo/cls'))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, betas=(0.9, 0.999)))
param_scheduler = []
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=2)
