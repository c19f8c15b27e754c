# Copyright (c) mmdynamic contributors. All rights reserved.
from .functional import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from . import robustness  # noqa: F401,E402  (registers the ImageCorruption transform)
