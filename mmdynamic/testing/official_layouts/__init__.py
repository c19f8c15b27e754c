# Copyright (c) mmdynamic contributors. All rights reserved.
"""Checkpoint files written in the authors' official layouts (official_checkpoints.md) with random
values: one module per method (``gfnet``, ``mgnet``, ``uniadafocus``, ``adafocusv2``, ``sar``). The
converter tests and ``tools/misc/check_released_layouts.py`` both build their files with these."""
