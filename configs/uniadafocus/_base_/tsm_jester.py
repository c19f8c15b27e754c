# Jester rawframes for the Uni-AdaFocus-TSM configs (mmaction2 RawframeDataset lists, frames
# '{:05d}.jpg' from 1); the pipelines come from tsm_rawframes.py, picked per config by T_0, e.g.
#   train_dataloader = dict(dataset=dict(pipeline={{_base_.train_pipeline_t36}}))
_base_ = ['./tsm_rawframes.py']
data_root = 'data/jester/rawframes'
train_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='RawframeDataset', ann_file='data/jester/train_list.txt',
                 data_prefix=dict(img=data_root), filename_tmpl='{:05d}.jpg',
                 start_index=1))
val_dataloader = dict(
    batch_size=16, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='RawframeDataset', ann_file='data/jester/val_list.txt',
                 data_prefix=dict(img=data_root), filename_tmpl='{:05d}.jpg',
                 start_index=1, test_mode=True))
test_dataloader = val_dataloader
optim_wrapper = dict(optimizer=dict(weight_decay=0.001))
