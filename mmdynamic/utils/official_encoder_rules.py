# Copyright (c) mmdynamic contributors. All rights reserved.
"""Rule tables of the encoders that the official video codes share, for the converters of
``tools/model_converters`` (:mod:`mmdynamic.utils.official_converter`): the tonylins MobileNet-V2
(``features.{0..18}``) and torchvision's ResNet, with or without TSM's ``.net.`` wrappers, mapped to
mmaction2's ``MobileNetV2(TSM)`` and ``ResNet(TSM)`` (``official_checkpoints.md``, rules 5-8 of the
Uni-AdaFocus-TSM section)."""
from typing import Dict, List, Optional, Tuple

from .official_converter import Rule

PARAM = r'(\w+)'  # weight, bias, running_mean, running_var, num_batches_tracked, weight_ih_l0, ...

# tonylins MobileNet-V2 ``features.{1..17}`` -> (stage, index in stage) of mmaction2's MobileNetV2
MBV2_STAGE_DEPTHS = (1, 2, 3, 4, 3, 3, 1)
MBV2_BLOCKS: Dict[int, Tuple[int, int]] = {
    block: stage_index for block, stage_index in enumerate(
        ((stage, index) for stage, depth in enumerate(MBV2_STAGE_DEPTHS, start=1)
         for index in range(depth)), start=1)}
# the blocks with a residual connection: TSM shifts their first conv (``conv.0.net.weight``)
MBV2_RESIDUAL_BLOCKS = tuple(b for b, (_, index) in MBV2_BLOCKS.items() if index > 0)
# tonylins block ``conv.{c}`` -> (ConvModule index, part); index 2 and 5 are ReLU6
_MBV2_EXPAND_PARTS = {0: (0, 'conv'), 1: (0, 'bn'), 3: (1, 'conv'), 4: (1, 'bn'), 6: (2, 'conv'),
                      7: (2, 'bn')}
_MBV2_FIRST_PARTS = {0: (0, 'conv'), 1: (0, 'bn'), 3: (1, 'conv'), 4: (1, 'bn')}  # expand ratio 1

IMAGENET_HEAD = 'unused 1000-way ImageNet head of the official encoder'


def mobilenet_v2_rules(src: str, dst: str, tsm: bool = False) -> List[Rule]:
    """Rules for a tonylins MobileNet-V2 (``features.{0..18}``) -> mmaction2's ``MobileNetV2`` /
    ``MobileNetV2TSM``.

    Args:
        src (str): Regex prefix of the official keys, e.g. ``r'global_CNN\\.features\\.'``.
        dst (str): Prefix of ours, e.g. ``'backbone.'``.
        tsm (bool): The TSM layout: the residual blocks' first conv is ``conv.0.net.*`` and maps to
            ``conv.0.net.conv.*``, its BN (``conv.1``) to ``conv.0.net.bn.*`` (mmaction2 shifts the
            whole ConvModule). A plain ``conv.0.*`` of such a block then matches no rule.

    Returns:
        list[Rule]: One rule per (block, layer).
    """
    rules = [Rule(rf'{src}0\.0\.{PARAM}', rf'{dst}conv1.conv.\1'),
             Rule(rf'{src}0\.1\.{PARAM}', rf'{dst}conv1.bn.\1'),
             Rule(rf'{src}18\.0\.{PARAM}', rf'{dst}conv2.conv.\1'),
             Rule(rf'{src}18\.1\.{PARAM}', rf'{dst}conv2.bn.\1')]
    for block, (stage, index) in MBV2_BLOCKS.items():
        ours = f'{dst}layer{stage}.{index}.conv.'
        parts = _MBV2_FIRST_PARTS if block == 1 else _MBV2_EXPAND_PARTS
        shifted = tsm and block in MBV2_RESIDUAL_BLOCKS
        for conv, (module, part) in parts.items():
            theirs = rf'{src}{block}\.conv\.{conv}\.'
            if shifted and module == 0:
                theirs += r'net\.' if part == 'conv' else ''
                target = f'{ours}0.net.{part}.'
            else:
                target = f'{ours}{module}.{part}.'
            rules.append(Rule(theirs + PARAM, target + r'\1'))
    return rules


def resnet_rules(src: str, dst: str, tsm: bool = False,
                 head_note: Optional[str] = IMAGENET_HEAD) -> List[Rule]:
    """Rules for a torchvision ResNet -> mmaction2's ``ResNet`` / ``ResNetTSM``.

    Args:
        src (str): Regex prefix of the official keys, e.g. ``r'local_CNN\\.'``.
        dst (str): Prefix of ours, e.g. ``'local_backbone.'``.
        tsm (bool): The TSM layout (``shift_place='blockres'``): every bottleneck's ``conv1`` is
            ``conv1.net.*`` and maps to ``conv1.conv.net.*``.
        head_note (str, optional): Drop ``fc.*`` with this note; None: no rule for it.

    Returns:
        list[Rule]
    """
    block = r'(layer\d\.\d+)\.'
    rules = [Rule(rf'{src}conv1\.{PARAM}', rf'{dst}conv1.conv.\1'),
             Rule(rf'{src}bn1\.{PARAM}', rf'{dst}conv1.bn.\1')]
    if tsm:
        rules += [Rule(rf'{src}{block}conv1\.net\.{PARAM}', rf'{dst}\1.conv1.conv.net.\2'),
                  Rule(rf'{src}{block}conv([23])\.{PARAM}', rf'{dst}\1.conv\2.conv.\3')]
    else:
        rules.append(Rule(rf'{src}{block}conv([123])\.{PARAM}', rf'{dst}\1.conv\2.conv.\3'))
    rules += [Rule(rf'{src}{block}bn([123])\.{PARAM}', rf'{dst}\1.conv\2.bn.\3'),
              Rule(rf'{src}{block}downsample\.0\.{PARAM}', rf'{dst}\1.downsample.conv.\2'),
              Rule(rf'{src}{block}downsample\.1\.{PARAM}', rf'{dst}\1.downsample.bn.\2')]
    if head_note is not None:
        rules.append(Rule(rf'{src}fc\.{PARAM}', None, head_note))
    return rules
