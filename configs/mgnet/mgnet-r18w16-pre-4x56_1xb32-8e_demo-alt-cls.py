# MGNet demo (mgnet-r18w16-pre-4x56_1xb32-8e_demo-cls.py) on the alt demo data: dot-matrix / seven-segment
# digits on blotchy backgrounds among glyph fragments and blobs (mmdynamic/datasets/demo_data_alt.py).
# The recipe is unchanged; the encoder starts from the alt stand-in
# (configs/demo/resnet18w16_glyph-crops_1xb32-20e_demo-alt-cls.py, train it first). Data:
#   python tools/misc/make_demo_data.py --generator alt --root data/demo_alt_glance --tasks cls \
#       --num-train 2000 --num-val 400 --num-distractors 0
_base_ = ['./mgnet-r18w16-pre-4x56_1xb32-8e_demo-cls.py']
data_root = 'data/demo_alt_glance/cls'
stage_inputs = dict(pretrained='work_dirs/resnet18w16_glyph-crops_1xb32-20e_demo-alt-cls/epoch_20.pth')
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
