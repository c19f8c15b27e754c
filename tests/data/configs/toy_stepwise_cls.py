# A tiny step-wise (glance + focus) classifier with known exits, in mmpretrain's default scope.
_base_ = ['./toy_mmpretrain.py']
model = dict(
    _delete_=True,
    type='DynToyStepwiseClassifier',
    num_classes=10,
    num_steps=3,
    patch_size=32,
    data_preprocessor=dict(num_classes=10, mean=[127.5] * 3, std=[64.0] * 3, to_rgb=True))
train_cfg = dict(by_epoch=False, max_iters=30, val_interval=30)
# anytime accuracy in validation; tests run with and without an exit policy, so test keeps top-1 only
# (the BudgetEvalHook of tools/test.py reports the anytime table)
val_evaluator = [dict(type='Accuracy', topk=(1, )), dict(type='AnytimeAccuracy')]
test_evaluator = dict(type='Accuracy', topk=(1, ))
optim_wrapper = dict(optimizer=dict(type='Adam', lr=0.003, _delete_=True))
default_hooks = dict(checkpoint=dict(interval=30))
