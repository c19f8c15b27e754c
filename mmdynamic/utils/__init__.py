# Copyright (c) mmdynamic contributors. All rights reserved.
from .compat import (allow_mmengine_checkpoint_types, apply_runtime_patches,
                     ensure_mmaction_importable, setup_cpu_distributed)
from .frameworks import (FRAMEWORKS, is_framework_available, register_unavailable,
                         require_framework)

__all__ = [
    'apply_runtime_patches', 'allow_mmengine_checkpoint_types', 'ensure_mmaction_importable',
    'setup_cpu_distributed', 'FRAMEWORKS', 'is_framework_available', 'require_framework',
    'register_unavailable'
]
