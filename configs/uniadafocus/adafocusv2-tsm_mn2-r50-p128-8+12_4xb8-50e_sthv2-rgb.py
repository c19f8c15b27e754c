# AdaFocusV2-TSM (128², 8 glance + 12 focus frames) on Something-Something V2: released `sthv2_p128.pth.tar`,
# top-1 59.6 at 18.5 GFLOPs. recipe as on Sth-Sth V1 (_base_/adafocusv2_tsm.py).
_base_ = ['./_base_/adafocusv2_tsm.py']
data_root = 'data/sthv2/rawframes'
train_dataloader = dict(dataset=dict(ann_file='data/sthv2/train_list.txt',
                                     data_prefix=dict(img=data_root), filename_tmpl='{:06d}.jpg'))
val_dataloader = dict(dataset=dict(ann_file='data/sthv2/val_list.txt',
                                   data_prefix=dict(img=data_root), filename_tmpl='{:06d}.jpg'))
test_dataloader = val_dataloader
