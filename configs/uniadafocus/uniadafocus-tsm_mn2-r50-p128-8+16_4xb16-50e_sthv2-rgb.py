# Uni-AdaFocus-TSM (128², 8+16) on Something-Something V2: paper top-1 / GFLOPs 64.2 / 24.2
# (Table 4; w/o sample-wise). T_0 = 48 focus candidates. No flip (direction-sensitive labels).
_base_ = ['./_base_/tsm_sthv2.py']
model = dict(
    local_backbone=dict(num_segments=16), num_classes=174, num_candidates=48,
    num_focus=16, patch_size=128, size_reg=0.5)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline_t48}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline_t48}}))
test_dataloader = val_dataloader
