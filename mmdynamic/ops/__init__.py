# Copyright (c) mmdynamic contributors. All rights reserved.
"""mmdynamic's C++ operators, compiled on first use (:mod:`.build`), each tested against the
pure-PyTorch path it speeds up.

- :func:`refine_cells`: a SAR refine block on its selected cells in one call
  (``sparse_impl='halo_cpp'`` of :mod:`mmdynamic.models.layers.sar_sparse`).
"""
from .build import OpBuildError, extensions_dir, load_op
from .sar_cells import refine_cells, sar_cells_available, sar_cells_op

__all__ = ['OpBuildError', 'extensions_dir', 'load_op', 'refine_cells', 'sar_cells_available',
           'sar_cells_op']
