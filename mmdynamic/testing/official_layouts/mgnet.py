# Copyright (c) mmdynamic contributors. All rights reserved.
"""Files in the official MGNet layout (PyTorch Lightning checkpoints; official_checkpoints.md,
MGNet), written from our model's state dict. Used by the converter tests and
tools/misc/check_released_layouts.py."""
from collections import OrderedDict

import torch


def official_state(ours):
    """Our MGNet state dict written back in the official layout (names of the spec's table; the
    backbone is torchvision's ResNet without ``fc``, which has mmpretrain's names)."""
    out = OrderedDict()
    for key, value in ours.items():
        if key.startswith('backbone.'):
            out[key] = value.clone()
    for kind in ('weight', 'bias'):
        out[f'feat_fusion.mha.in_proj_{kind}'] = torch.cat(
            [ours[f'fusion.{p}_proj.{kind}'] for p in 'qkv'])
    pairs = [('feat_fusion.mha.out_proj', 'fusion.out_proj'), ('feat_fusion.norm', 'fusion.norm'),
             ('loc_network.fc', 'localization.fc'), ('global_fc.fc', 'global_head'),
             ('glimpse_fc.fc', 'glimpse_head')]
    for official, mine in pairs:
        for kind in ('weight', 'bias'):
            if f'{mine}.{kind}' in ours:
                out[f'{official}.{kind}'] = ours[f'{mine}.{kind}'].clone()
    return out


def lightning_file(path, state, hparams=None):
    """Write ``state`` as PyTorch Lightning does: ``model.`` + key under ``state_dict``, next to the
    usual top-level entries (plain dicts, lists, numbers, strings, tensors)."""
    ckpt = {
        'epoch': 399, 'global_step': 198_000, 'pytorch-lightning_version': '1.0.8',
        'checkpoint_callback_best_model_score': torch.tensor(81.46),
        'checkpoint_callback_best_model_path': '/ckpt/epoch=399.ckpt',
        'optimizer_states': [{'state': {0: {'momentum_buffer': torch.zeros(3)}},
                              'param_groups': [{'lr': 0.1, 'momentum': 0.9, 'dampening': 0,
                                                'weight_decay': 1e-4, 'nesterov': False,
                                                'params': [0]}]}],
        'lr_schedulers': [{'total_steps': 200_000, 'last_epoch': 198_000, 'base_lrs': [0.1],
                           '_step_count': 198_001, '_last_lr': [4e-7]}],
        'hparams_name': 'hparams',
        'state_dict': OrderedDict(('model.' + k, v) for k, v in state.items()),
    }
    if hparams is not None:
        ckpt['hyper_parameters'] = hparams
    torch.save(ckpt, path)
    return path


HPARAMS = dict(arch='resnet18', n_iter=4, scale=2.33, alpha=0.6, s=0.02, lr=0.1, max_epochs=400)
