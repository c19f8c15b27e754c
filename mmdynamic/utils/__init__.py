# Copyright (c) mmdynamic contributors. All rights reserved.
from .compat import (allow_mmengine_checkpoint_types, apply_runtime_patches,
                     ensure_mmaction_importable, setup_cpu_distributed)
from .frameworks import (FRAMEWORKS, is_framework_available, register_unavailable,
                         require_framework)
from .model_wrapper import unwrap_model
from .official_converter import (CONVERTER_VERSION, Rule, RuleResult, apply_rules, check_strict,
                                 convert_checkpoint, load_official, unwrap_state_dict)

__all__ = [
    'apply_runtime_patches', 'allow_mmengine_checkpoint_types', 'ensure_mmaction_importable',
    'setup_cpu_distributed', 'FRAMEWORKS', 'is_framework_available', 'require_framework',
    'register_unavailable', 'CONVERTER_VERSION', 'Rule', 'RuleResult', 'apply_rules',
    'check_strict', 'convert_checkpoint', 'load_official', 'unwrap_state_dict', 'unwrap_model'
]
