# Copyright (c) mmdynamic contributors. All rights reserved.
"""GFNet (Glance and Focus Networks) for mmpretrain."""
from .demo_crop import DemoObjectCrop
from .classifier import GFCascadeClassifier, GFRecurrentClassifier
from .encoder import GFEncoder
from .gfnet import GFNet, GFRollout
from .policy import GFPatchPolicy
# the patch figure hook (mmdynamic.visualization needs no framework; registered here with GFNet)
from mmdynamic.visualization.gfnet_patches import (  # noqa: I001
    GFNetPatchVisHook, draw_gfnet_patches)
from .ppo import (PPOConfig, RolloutBuffer, contrastive_reward, discounted_returns,
                  increment_reward, normalize_returns, ppo_loss)

__all__ = [
    'GFNet', 'GFRollout', 'GFEncoder', 'GFRecurrentClassifier', 'GFCascadeClassifier',
    'GFPatchPolicy', 'PPOConfig', 'RolloutBuffer', 'increment_reward', 'contrastive_reward',
    'discounted_returns', 'normalize_returns', 'ppo_loss', 'GFNetPatchVisHook', 'draw_gfnet_patches', 'DemoObjectCrop'
]
