# Copyright (c) mmdynamic contributors. All rights reserved.
"""The model inside MMEngine's model wrappers (DDP, FSDP, ...), for hooks and loops."""
from mmengine.model import is_model_wrapper
from torch import nn


def unwrap_model(model: nn.Module) -> nn.Module:
    """``model.module`` when ``model`` is an MMEngine model wrapper (e.g.
    ``MMDistributedDataParallel``), else ``model`` itself."""
    return model.module if is_model_wrapper(model) else model
