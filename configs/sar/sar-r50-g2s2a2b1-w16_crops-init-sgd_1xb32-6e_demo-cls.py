# The object-selective SAR classification demo: sar-r50-g2s2a2b1-w16_crops-init_1xb32-6e_demo-cls.py
# (SAR-ResNet-50 G2 s2 a2 b1, target 0.5, 1/4 width, started from the crops stand-in for ImageNet
# pre-training) with the paper's optimizer, SGD with Nesterov momentum (sar.md §4), instead of
# AdamW, and the sparsity target per mask group (issue #19).
#
# Issue #19: with Eq. 10 and the stand-in's Kaiming-initialised mask generators, whether the masks
# refined the object depended on the seed and the thread count (0.463 / 0.494 at 2 threads on our
# data, 0.34-0.54 / 0.51-0.53 on the alt data). Two causes, two fixes (README, "Where do the masks
# refine?"): the generators' 1x1 weights now start at N(0, 0.001) (MaskGenerator's default), so no
# object cell starts on the skip side by chance, and the target applies to each mask group
# (loss_type='group'), so a mask cannot meet it by refining one group everywhere and the other
# nowhere. Every run (both data sets, seeds 0-2, 1 and 2 threads) is in the README.
#
# Why SGD: with AdamW, masks of stage 1 skipped the digit card although the classification gradient
# dL/dM on those cells was negative (refining would lower the loss): the card's refine logits were
# driven into saturation, where the straight-through gradient vanishes, during the target step-down.
# Adam steps every weight by about its learning rate whatever the size of its gradient; SGD moves
# weights in proportion to their gradients.
#
# Data and stand-in (retrain the stand-in after the init change: its checkpoint keeps the mask
# generators' initial weights):
#   python tools/misc/make_demo_data.py --root data/demo_glance --tasks cls --num-train 2000 \
#       --num-val 400 --num-distractors 0
#   python tools/train.py configs/sar/sar-r50-g2s2a2b1-w16_card-crops_1xb128-12e_demo-cls.py
_base_ = ['./sar-r50-g2s2a2b1-w16_crops-init_1xb32-6e_demo-cls.py']
# the sparsity target per mask group ('group', issue #19): with the mask density of Eq. 10 a G2 mask
# met the target by refining all of one group and none of the other (0.5 on object and background
# alike) instead of choosing places
model = dict(sparsity=dict(loss_type='group'))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    # fine-tuning learning rate 0.01 (the paper: 0.1 from scratch), weight decay 1e-4 (paper; none
    # on the mask generators, as in the AdamW demos)
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4),
    # the mask generators at 0.5: the target (1 -> 0.5 between 10 % and 30 % of the 6 epochs) is
    # followed within a few hundred iterations (the realised density ends within 0.05 of it)
    paramwise_cfg=dict(custom_keys={'.masks.': dict(lr_mult=50.0, decay_mult=0.0)}))
