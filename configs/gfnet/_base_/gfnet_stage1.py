# Stage I: fG (unless frozen), fL, fC and the DSN heads with uniformly random patches. SGD Nesterov
# 0.9, weight decay on everything, per-epoch cosine without warm-up (App. A.3). ``lr`` is the
# encoders' LR (ResNet/DenseNet 0.01, RegNet 0.02, MobileNetV3/EfficientNet 0.005); fC's is 0.1,
# set as the ``classifier`` lr_mult = 0.1 / lr (the model configs set both, and train_stage=1).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={'classifier': dict(lr_mult=10.0)}))
max_epochs = 60
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs,
                        convert_to_iter_based=False)]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
