# GFNet stage III on the alt demo data (see the alt stage-I config): fine-tuning with the fixed
# stage-II policy, the demo recipe unchanged.
_base_ = ['./gfnet-r18w16-p48-t3_stage3_1xb32-2e_demo-cls.py']
data_root = 'data/demo_alt_glance/cls'
stage_inputs = dict(
    pretrained='work_dirs/resnet18w16_glyph-crops_1xb32-20e_demo-alt-cls/epoch_20.pth',
    stage1='work_dirs/gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-alt-cls',
    stage2='work_dirs/gfnet-r18w16-p48-t3_stage2_1xb32-20e_demo-alt-cls')
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
