# AdaFocusV2-TSM (128², 8 glance + 12 focus frames) on Jester: released `jester_p128.pth.tar`,
# top-1 96.6 at 18.5 GFLOPs. 27 classes; recipe as on Sth-Sth V1 (_base_/adafocusv2_tsm.py).
_base_ = ['./_base_/adafocusv2_tsm.py']
data_root = 'data/jester/rawframes'
model = dict(num_classes=27)
train_dataloader = dict(dataset=dict(ann_file='data/jester/train_list.txt',
                                     data_prefix=dict(img=data_root)))
val_dataloader = dict(dataset=dict(ann_file='data/jester/val_list.txt',
                                   data_prefix=dict(img=data_root)))
test_dataloader = val_dataloader
