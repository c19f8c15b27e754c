# Copyright (c) mmdynamic contributors. All rights reserved.
"""Files in the official SAR layout (sarNet's ``save_checkpoint``; official_checkpoints.md, SAR), random
values. The layouts themselves (names -> shapes) are the converter's ``official_imagenet_layout`` /
``official_cifar_layout``; this module fills them and wraps them as the training script does."""
import argparse

import torch


def _hyper_set(**kwargs):
    """``str(args)`` of the official training script (its argument names)."""
    args = dict(arch='sar_resnet_1attFuse', arch_config='sar_resnet50_1attFuse', patch_groups=2,
                alpha=2, beta=1, base_scale=2, mask_size=7, target_rate=0.5, t0=1.0, t_last=0.01,
                lambda_act=0.5, dataset='imagenet', num_classes=1000, lr=0.1, epochs=200)
    args.update(kwargs)
    return str(argparse.Namespace(**args))


def _tensors(layout, seed=0, device='cpu'):
    """Random values in the official layout (``num_batches_tracked`` an int, variances > 0)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if device == 'meta':
            state[key] = torch.empty(shape, device='meta')
        elif key.endswith('num_batches_tracked'):
            state[key] = torch.tensor(100)
        elif key.endswith('running_var'):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=gen)
    return state


def _checkpoint(layout, model, hyper_set, seed=0, device='cpu', prefix='module.'):
    """A dict as the official ``save_checkpoint`` writes it."""
    state = {prefix + k: v for k, v in _tensors(layout, seed, device).items()}
    return dict(epoch=200, model=model, hyper_set=hyper_set, state_dict=state,
                best_acc1=torch.tensor(77.25), best_acc1_corresponding_acc5=93.5,
                optimizer=dict(state={}, param_groups=[dict(lr=0.0, momentum=0.9)]),
                val_acc_top1=[70.0, 77.25], val_act_rate=[0.6, 0.5], temp=0.01)


def _cifar(sar, classes=100, groups=2, depth=32, width=1.0, **hyper):
    name = f'sar_resnet{depth}' + (f'x{str(width).replace(".", "_")}' if width != 1 else '') + \
        '_alphaBase_cifar'
    layout = sar.official_cifar_layout(sar.CIFAR_BLOCKS[depth], width, groups, classes=classes)
    hyper_set = _hyper_set(arch='sar_resnet_cifar3stage_alphaBase', arch_config=name,
                           patch_groups=groups, mask_size=4, num_classes=classes,
                           dataset=f'cifar{classes}', **hyper)
    return layout, name, hyper_set
