# GFNet stage I on the alt demo data (dot-matrix / seven-segment digits on blotchy backgrounds among
# glyph fragments and blobs, mmdynamic/datasets/demo_data_alt.py): the demo recipe unchanged, its own
# stand-in (configs/demo/resnet18w16_glyph-crops_1xb32-20e_demo-alt-cls.py) and its own work dirs.
#   python tools/misc/make_demo_data.py --generator alt --root data/demo_alt_glance --tasks cls \
#       --num-train 2000 --num-val 400 --num-distractors 0
_base_ = ['./gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-cls.py']
data_root = 'data/demo_alt_glance/cls'
stage_inputs = dict(
    pretrained='work_dirs/resnet18w16_glyph-crops_1xb32-20e_demo-alt-cls/epoch_20.pth',
    stage1='work_dirs/gfnet-r18w16-p48-t3_stage1_1xb32-6e_demo-alt-cls',
    stage2='work_dirs/gfnet-r18w16-p48-t3_stage2_1xb32-20e_demo-alt-cls')
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = dict(dataset=dict(data_root=data_root))
