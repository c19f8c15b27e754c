# The demo stand-in for ImageNet pre-training (see resnet18w16_card-crops_1xb32-20e_demo-cls.py), trained
# the same way on the alt demo data (dot-matrix / seven-segment digits on blotchy backgrounds,
# mmdynamic/datasets/demo_data_alt.py): 32 px crops around the glyph of the same training images.
# Data (2000/400 images, no letter glyphs; fragments and blobs remain as clutter):
#   python tools/misc/make_demo_data.py --generator alt --root data/demo_alt_glance --tasks cls \
#       --num-train 2000 --num-val 400 --num-distractors 0
_base_ = ['./resnet18w16_card-crops_1xb32-20e_demo-cls.py']
data_root = 'data/demo_alt_glance/cls'
train_dataloader = dict(dataset=dict(data_root=data_root))
val_dataloader = dict(dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
