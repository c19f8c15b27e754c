# Uni-AdaFocus-TSM (128², 8+12) on Jester: paper top-1 / GFLOPs 97.1 / 18.8
# (Table 4; w/o sample-wise). T_0 = 36 focus candidates. No flip (direction-sensitive labels).
_base_ = ['./_base_/tsm_jester.py']
model = dict(
    local_backbone=dict(num_segments=12), num_classes=27, num_candidates=36,
    num_focus=12, patch_size=128, size_reg=0.25)
train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline_t36}}))
val_dataloader = dict(dataset=dict(pipeline={{_base_.test_pipeline_t36}}))
test_dataloader = val_dataloader
