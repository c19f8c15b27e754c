# Uni-AdaFocus-TSM (96², 8+8) on Something-Something V2: paper top-1 / GFLOPs 60.8 / 8.8
# (Table 4; w/o sample-wise). T_0 = 24 focus candidates. No flip (direction-sensitive labels).
_base_ = ['./_base_/tsm_sthv2.py']
model = dict(
    local_backbone=dict(num_segments=8), num_classes=174, num_candidates=24,
    num_focus=8, patch_size=96, size_reg=0.5)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline_t24}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline_t24}}))
test_dataloader = val_dataloader
