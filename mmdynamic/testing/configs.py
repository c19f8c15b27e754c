# Copyright (c) mmdynamic contributors. All rights reserved.
"""Config edits that tests make to run a shipped config on the tests' demo data."""
from typing import Any


def drop_pretrained(node: Any) -> None:
    """Remove ``init_cfg=dict(type='Pretrained', ...)`` everywhere in a (model) config, in place.

    Args:
        node (dict | list | tuple | Any): A config node; dicts and sequences are walked.
    """
    if isinstance(node, dict):
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            drop_pretrained(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            drop_pretrained(value)


def inner_dataset(loader: dict) -> dict:
    """The dataset config of a dataloader config, inside any dataset wrappers (``dataset=...``)."""
    dataset = loader['dataset']
    while 'dataset' in dataset:
        dataset = dataset['dataset']
    return dataset
