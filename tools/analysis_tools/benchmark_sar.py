# Copyright (c) mmdynamic contributors. All rights reserved.
"""CPU latency of SAR-ResNet-50 (dense-masked and patch-sparse) against ResNet-50 (sar.md §5).

``--task cls`` (default): classification backbones at 224 x 224 (below). ``--task det``: Faster
R-CNN + FPN at 800 x 1333 (padded to 800 x 1344 as mmdet's data preprocessor does) built from
``configs/sar/sar-r50_faster-rcnn_coco.py`` against its static twin, mmdet's
``faster-rcnn_r50_fpn_1x_coco.py`` (mmdet's ``ResNet(depth=50)``). ``--task seg``: DeepLabV3 and
PSPNet at 512 x 512, OS 8, from ``configs/sar``'s VOC configs against mmseg's
``{deeplabv3,pspnet}_r50-d8_4xb4-20k_voc12aug-512x512.py`` (mmseg's ``ResNetV1c``: deep stem,
output stride 8), SyncBN replaced by BN. Det/seg models are built through the mmdet/mmseg
registries with random weights, the SAR backbone exactly as the config gives it (mask cells in
pixels there). Each is timed on the backbone alone and on the whole model (``predict``: backbone,
neck and heads with post-processing; for Faster R-CNN the RoI head on the RPN's own proposals).
MACs of the whole model = backbone MACs + MACs of neck and heads counted on that model's own
features. ``--quick`` shrinks the inputs (det 192 x 256, seg 128 x 128) and the runs for a smoke
test.

``--sparse-impls`` times several implementations of the sparse path side by side (``halo``, the
default, and ``gemm``, the reference; :mod:`mmdynamic.models.layers.sar_sparse`); ``--conv-backend``
chooses how every model's convolutions run: ``onednn`` (default: every ``nn.Conv2d`` through
oneDNN, :func:`mmdynamic.models.layers.sar_sparse_ops.use_onednn_convs`) or ``pytorch`` (eager
PyTorch's own choice, which runs 1x1 convolutions of a batch below 16 on one thread with a slower
kernel).

Batch 1, 224 x 224, for each requested number of intra-op threads (``torch.set_num_threads``):
median wall-clock latency of ``--runs`` forwards after ``--warmup`` ones, under
``torch.inference_mode()``. The models are timed round-robin (one forward of each per round), so
that background load affects all of them alike. Compared:

- ResNet-50: mmpretrain's ``ResNet(depth=50)`` backbone;
- SAR-R50 G2s2a2b1 (``SARResNet(depth=50, groups=2, alpha=2, beta=1, base_scale=2)``)
  dense-masked: the training-time computation (every refine conv runs densely on masked maps);
- the same model with ``set_sparse_infer(True)``: only the selected patches are refined.

The masks are forced to a requested density: every mask generator still runs (its cost is real
and counted), but its logits are replaced by a fixed random pattern (seeded) with
``round(density * G * K * K)`` refined cells. The table reports the realised mean density
(``backbone.density()``) and the realised MACs (``backbone.last_flops``); ResNet-50's MACs are
counted with :func:`mmdynamic.utils.flops.count_macs` on the BN-folded network (4.09 G, BN not
counted, as in the SAR convention). The models have random weights (the latency does not depend
on them); denormals are flushed to zero in all runs.

Unless ``--no-fuse-bn``, every BN is folded into its conv in all models (mmcv's
``fuse_conv_bn``), and unless ``--memory-format contiguous`` all models and the input are
channels-last (oneDNN's native layout). The outputs are checked against the unfused models and
sparse against dense (``--no-check`` skips this).

Compiled models (``--compile``, ``--task cls``): ResNet-50 and SAR sparse are built anew, prepared
the same way and compiled with ``torch.compile`` (Inductor; ``--compile-mode``; automatic dynamic
shapes; ``--compile-freezing`` for Inductor's freezing), then timed next to the eager models; a
compiled row's speed-up is taken against the compiled ResNet-50. ResNet-50 is compiled whole. SAR
is compiled by parts (:func:`compile_sar`): every module that takes the MACs meter runs compiled
without it (the meter's float total would make Dynamo recompile each call) and
:class:`CompiledPart` adds the MACs the eager module counts; in the sparse path the
data-dependent index building stays eager (``torch.compiler.disable`` in
:mod:`mmdynamic.models.layers.sar_sparse_halo`), so the compiled graphs see the number of cells
as a dynamic dimension. The first call of each compiled model (the compilation) is timed and
noted, and its output checked against the eager dense output.

Devices and batches: ``--device cuda`` moves the models and inputs to the GPU after the checks (run
on the CPU) and times them with CUDA events (:func:`mmdynamic.utils.benchmark.time_round_robin`);
``--batch-sizes`` times cls at several batch sizes (MACs per image); det/seg time batch 1.

Examples:
    python tools/analysis_tools/benchmark_sar.py --runs 100 --warmup 20 --out sar_latency.md
    python tools/analysis_tools/benchmark_sar.py --threads 1 --densities 0.5 --compile \
        --compile-freezing
    python tools/analysis_tools/benchmark_sar.py --task det --runs 3 --warmup 1
    python tools/analysis_tools/benchmark_sar.py --task seg --runs 3 --warmup 1
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import time
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from mmdynamic.models.backbones.sar_resnet import SARResNet  # noqa: E402
from mmdynamic.models.layers.sar_layers import (MacsMeter, MaskGenerator,  # noqa: E402
                                              refined_fraction)
from mmdynamic.models.layers.sar_sparse import SPARSE_IMPLS, set_sparse_impl  # noqa: E402
from mmdynamic.models.layers.sar_sparse_ops import use_onednn_convs  # noqa: E402
from mmdynamic.utils.benchmark import (add_inference_args, allocator_note,  # noqa: E402
                                       check_inference_args, device_from_args, device_note,
                                       emit_report, memory_format_from_args,
                                       prepare_for_inference, prepare_from_args,
                                       reexec_with_tuned_malloc, synchronize,
                                       time_round_robin)
from mmdynamic.utils.flops import count_macs  # noqa: E402


# task -> (architecture, SAR config, static twin config, registry scope)
TASK_MODELS = {
    'det': [('Faster R-CNN', 'configs/sar/sar-r50_faster-rcnn_coco.py',
             'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py', 'mmdet')],
    'seg': [('DeepLabV3', 'configs/sar/sar-r50-g2s4a1-t0.5_deeplabv3_4xb4-20k_voc12aug-512x512.py',
             'mmseg::deeplabv3/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512.py', 'mmseg'),
            ('PSPNet', 'configs/sar/sar-r50-g2s4a1-t0.5_pspnet_4xb4-20k_voc12aug-512x512.py',
             'mmseg::pspnet/pspnet_r50-d8_4xb4-20k_voc12aug-512x512.py', 'mmseg')],
}
TASK_SIZES = {'det': (800, 1333), 'seg': (512, 512)}  # (H, W) of the image
QUICK_SIZES = {'det': (192, 256), 'seg': (128, 128)}
# --quick: runs, warm-up, threads, densities (the suite's smoke test)
QUICK = dict(runs=2, warmup=1, threads=[1], densities=[0.5])
TASK_DEFAULTS = dict(runs=3, warmup=1)  # det/seg forwards take seconds on CPU
# torch.compile modes (``mode=``); 'reduce-overhead' adds CUDA graphs (CUDA only)
COMPILE_MODES = ('default', 'max-autotune-no-cudagraphs', 'max-autotune', 'reduce-overhead')
# Dynamo recompiles a forward shared by many module instances (one entry per shape, or per
# instance when Inductor freezes the weights): room for every block of the models timed
RECOMPILE_LIMIT = 512


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='CPU latency of SAR-ResNet-50 vs ResNet-50')
    parser.add_argument('--task', choices=['cls', 'det', 'seg'], default='cls')
    parser.add_argument('--runs', type=int, help='timed forwards per model (default 50; det/seg 3)')
    parser.add_argument('--warmup', type=int,
                        help='untimed forwards per model first (default 10; det/seg 1)')
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--densities', type=float, nargs='+', default=[0.3, 0.5, 0.7])
    parser.add_argument('--groups', type=int, default=2, help='G of SAR-R50 (cls; s2a2b1 fixed)')
    parser.add_argument('--input-size', type=int, default=224, help='cls input size')
    parser.add_argument('--quick', action='store_true',
                        help=f'smoke test: small det/seg inputs {QUICK_SIZES}, {QUICK}')
    parser.add_argument('--sparse-impls', nargs='+', choices=SPARSE_IMPLS, default=['halo'],
                        help='implementations of the sparse path to time (the first one is also '
                        'checked against the dense path)')
    parser.add_argument('--clock', choices=list(CLOCKS), default='wall',
                        help='wall: latency; cpu: CPU time of the timing thread (only with '
                        '--threads 1; robust to other processes on a shared machine)')
    parser.add_argument('--conv-backend', choices=['onednn', 'pytorch'], default='onednn',
                        help='how every model runs its convolutions (see the module docstring)')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1],
                        help='cls batch sizes to time (det/seg: 1 only)')
    parser.add_argument('--compile', action='store_true',
                        help='also time ResNet-50 / the static twin backbone and SAR sparse '
                        'compiled with torch.compile (Inductor), next to eager (see "Compiled '
                        'models" in the module docstring)')
    parser.add_argument('--compile-mode', choices=COMPILE_MODES, default='default',
                        help='torch.compile mode')
    parser.add_argument('--compile-refine', action='store_true',
                        help='compile the refine blocks (their sparse path) too; default eager')
    parser.add_argument('--compile-freezing', action='store_true',
                        help="Inductor's freezing: weights as constants, BN folded and oneDNN "
                        'weights prepacked once (CPU inference)')
    add_inference_args(parser, device=True)
    parser.add_argument('--no-check', action='store_true',
                        help='skip the output checks (fused vs unfused, sparse vs dense)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--breakdown', action='store_true',
                        help='also time the parts of the models (first thread count, density 0.5 '
                        'or the first density) with forward hooks')
    parser.add_argument('--out', help='also write the report (markdown) to this file')
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    defaults = TASK_DEFAULTS if args.task != 'cls' else dict(runs=50, warmup=10)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.runs < 1 or args.warmup < 0:
        parser.error(f'--runs must be >= 1 and --warmup >= 0, got {args.runs} and {args.warmup}')
    if args.clock == 'cpu' and args.threads != [1]:
        parser.error(f'--clock cpu measures one thread: use --threads 1, got {args.threads}')
    check_inference_args(parser, args)  # --device: a name torch knows, CUDA present if asked
    if args.clock == 'cpu' and args.device != 'cpu':
        parser.error(f'--clock cpu measures the CPU time of this thread, not {args.device} work')
    if any(b < 1 for b in args.batch_sizes):
        parser.error(f'--batch-sizes must be >= 1, got {args.batch_sizes}')
    if args.task != 'cls' and args.batch_sizes != [1]:
        parser.error(f'--task {args.task} times batch 1 only (one image per forward, as '
                     f'deployed; mmdet/mmseg pad a batch to its largest image), got '
                     f'--batch-sizes {args.batch_sizes}')
    if args.compile and args.task != 'cls':
        parser.error(f'--compile times the classification backbones (--task cls); for --task '
                     f'{args.task} it is not implemented')
    if args.compile_mode != 'default' and not args.compile:
        parser.error('--compile-mode needs --compile')
    for flag in ('compile_freezing', 'compile_refine'):
        if getattr(args, flag) and not args.compile:
            parser.error(f'--{flag.replace("_", "-")} needs --compile')
    if any(not 0 <= d <= 1 for d in args.densities):
        parser.error(f'--densities must lie in [0, 1], got {args.densities}')
    return args


def force_density(model: nn.Module, density: float, seed: int = 0) -> None:
    """Make every mask generator of ``model`` select a fixed random ``density`` of its cells.

    The generator's own computation still runs (and counts its MACs); its logits (B, G, 2, K_h, K_w)
    are replaced by +-1 logits of a fixed pattern with ``round(density * G * K_h * K_w)`` refined
    cells, the same for every image (one pattern per generator and grid: a generator with mask cells
    of a fixed size in pixels gets its grid from the input).

    Args:
        model (nn.Module): A SAR backbone.
        density (float): Wanted fraction of refined cells of each mask, in [0, 1].
        seed (int): Seed of the patterns.
    """
    for index, m in enumerate(mod for mod in model.modules() if isinstance(mod, MaskGenerator)):
        original = type(m).forward.__get__(m)
        patterns: Dict[Tuple[int, int], torch.Tensor] = {}

        def forward(x, meter=None, grid=None, original=original, patterns=patterns, index=index,
                    groups=m.groups, module=m):
            # a compiled generator (compile_sar) keeps its compiled forward in COMPILED_FORWARD
            logits = module.__dict__.get(COMPILED_FORWARD, original)(x, meter, grid)
            size = tuple(logits.shape[-2:])
            if size not in patterns:
                gen = torch.Generator().manual_seed(seed * 1000 + index)
                cells = groups * size[0] * size[1]
                pattern = torch.zeros(cells)
                pattern[torch.randperm(cells, generator=gen)[:round(density * cells)]] = 1
                refine = pattern.view(1, groups, 1, *size) * 2 - 1
                patterns[size] = torch.cat([torch.zeros_like(refine), refine], dim=2)
            return patterns[size].to(logits).expand_as(logits)

        m.forward = forward


COMPILED_FORWARD = '_bench_compiled_forward'


class CompiledPart(nn.Module):
    """A part of a SAR model run through ``torch.compile``, its MACs still counted.

    Every SAR module takes the MACs meter, a Python object whose float total changes on every call;
    Dynamo would guard on that value and recompile each call. The compiled forward therefore runs
    without the meter, and this wrapper adds to the meter what the eager module counts: its static
    MACs, measured once per input shape by an eager call, and for a refine block the masked MACs,
    ``dense_macs(H, W) x refined fraction of the mask``, as the block counts them.

    Args:
        module (nn.Module): The eager module (kept as a submodule: ``set_sparse_infer`` and
            ``set_sparse_impl`` still reach a refine block).
        compiler (Callable): ``torch.compile`` with the chosen options.
        tensors (int): Number of leading tensor arguments before the meter (1, or 2 for a refine
            block (x, mask) and the fusion (x_base, x_refine)).
        forward (Callable, optional): The eager forward to compile instead of the module (a mask
            generator whose ``forward`` :func:`force_density` replaced).
    """

    def __init__(self, module: nn.Module, compiler: Callable, tensors: int = 1,
                 forward: Optional[Callable] = None) -> None:
        super().__init__()
        self.module, self.tensors = module, tensors
        self.eager = forward or module.forward
        # the module itself where possible: Inductor's freezing folds only module parameters
        compiled = compiler(forward or module)
        self.__dict__['compiled'] = compiled  # not a submodule: no duplicate parameters
        self.masked = hasattr(module, 'masked_convs')  # a refine block
        self.static_macs: Dict[tuple, float] = {}

    def forward(self, *args):
        inputs, rest = args[:self.tensors], args[self.tensors + 1:]
        meter = args[self.tensors] if len(args) > self.tensors else None
        if meter is not None:
            key = tuple(tuple(t.shape) if torch.is_tensor(t) else t for t in args[:1] + rest)
            if key not in self.static_macs:
                probe = MacsMeter(inputs[0].shape[0], inputs[0].device)
                self.eager(*inputs, probe, *rest)
                self.static_macs[key] = probe.static
            meter.add(self.static_macs[key])
            if self.masked:  # what the refine block adds (sar_blocks / sar_sparse)
                size, mask = inputs[0].shape[-2:], inputs[1]
                meter.add_masked(self.module.dense_macs(size),
                                 refined_fraction(mask, size, self.module.mask_cell_size))
        return self.compiled(*inputs, None, *rest)


def make_compiler(mode: str = 'default', freezing: bool = False) -> Callable[[Callable], Callable]:
    """``torch.compile`` with automatic dynamic shapes (the number of cells a refine block computes
    varies with its mask); sets Dynamo's and Inductor's options for the process.

    With ``freezing`` Inductor's layout optimisation is switched off: its conv weight layout pass
    fails on dynamic shapes in torch 2.13 ("'int' object has no attribute 'meta'"), and the models
    are channels-last already.

    Args:
        mode (str): ``torch.compile``'s mode (:data:`COMPILE_MODES`). Defaults to 'default'.
        freezing (bool): Inductor's freezing (weights as constants: BN folded, oneDNN weights
            prepacked once; inference only). Defaults to False.

    Returns:
        Callable: fn -> its compiled version.
    """
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config
    dynamo_config.recompile_limit = RECOMPILE_LIMIT
    dynamo_config.accumulated_recompile_limit = RECOMPILE_LIMIT * 8
    inductor_config.freezing = freezing
    if freezing:
        inductor_config.layout_optimization = False
    # dynamic=None: a dimension that changes between calls (the cells of a refine block) is made
    # symbolic when it first changes, the others stay static
    return lambda fn: torch.compile(fn, mode=mode, dynamic=None)


def compile_sar(model: SARResNet, compiler: Callable, refine: bool = False) -> SARResNet:
    """Compile the parts of a SAR backbone, in place: per stage the base blocks, mask generators,
    transforms, fusion and fusion block, then the blocks of the last stage; with ``refine`` also
    the refine blocks (with ``sparse_infer`` the sparse path, its data-dependent index building
    left eager by ``torch.compiler.disable``). The stem (one conv and a pool) stays eager.

    Args:
        model (SARResNet): A prepared (BN folded, conv backend set) eval-mode backbone; its mask
            generators may be forced (:func:`force_density`, before or after).
        compiler (Callable): :func:`make_compiler`'s ``torch.compile``.
        refine (bool): Compile the refine blocks too (on the development VM their compiled sparse
            path ran 1.3-8x slower than eager, configs/sar/README.md). Defaults to False.

    Returns:
        SARResNet: ``model``.
    """
    for stage in model.stages:
        for i, base in enumerate(stage.base):
            stage.base[i] = CompiledPart(base, compiler)
        for i, block in enumerate(stage.refine if refine else []):
            stage.refine[i] = CompiledPart(block, compiler, tensors=2)
        for generator in stage.masks:
            generator.__dict__[COMPILED_FORWARD] = CompiledPart(
                generator, compiler, forward=type(generator).forward.__get__(generator))
        for name in ('base_transform', 'refine_transform', 'fusion_block'):
            if getattr(stage, name) is not None:
                setattr(stage, name, CompiledPart(getattr(stage, name), compiler))
        stage.fuse = CompiledPart(stage.fuse, compiler, tensors=2)
    for i, block in enumerate(model.layer4):
        model.layer4[i] = CompiledPart(block, compiler)
    return model


def build_resnet50() -> nn.Module:
    """mmpretrain's ResNet-50 backbone in eval mode."""
    from mmpretrain.models import ResNet
    model = ResNet(depth=50)
    model.eval()  # mmpretrain's train() returns None
    return model


def build_sar(groups: int, density: float, seed: int) -> SARResNet:
    """SAR-R50 G{groups}s2a2b1 in eval mode with masks forced to ``density``."""
    model = SARResNet(depth=50, groups=groups, alpha=2, beta=1, base_scale=2)
    model.eval()
    force_density(model, density, seed)
    model.__dict__['_bench_density'] = density
    return model


def _last(out) -> torch.Tensor:
    return out[-1] if isinstance(out, (tuple, list)) else out


def _rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


class Entry:
    """One timed configuration.

    Args:
        name (str): Model name in the table.
        model (nn.Module): The model; SAR models are shared by their dense and sparse entries (and,
            for det/seg, by their densities and parts).
        sparse (bool, optional): ``set_sparse_infer`` value before each forward (SAR only).
        impl (str, optional): ``sparse_impl`` of the refine blocks before each forward.
        forced (float, optional): Mask density forced before each forward (det/seg SAR entries,
            which share one model over the densities).
        fn (Callable, optional): What to time on the input, default ``model(x)``.
        part (str): What ``fn`` runs, for the det/seg table. Defaults to ``'backbone'``.
        seed (int): Seed of the forced masks.
        compiled (bool): The model is compiled (``--compile``); its speed-up is taken against the
            compiled baseline. Defaults to False.
    """

    def __init__(self, name: str, model: nn.Module, sparse: Optional[bool] = None,
                 impl: Optional[str] = None, forced: Optional[float] = None,
                 fn: Optional[Callable] = None, part: str = 'backbone', seed: int = 0,
                 compiled: bool = False) -> None:
        self.name, self.model, self.sparse, self.impl = name, model, sparse, impl
        self.forced, self.fn, self.part, self.seed = forced, fn, part, seed
        self.compiled = compiled
        # the density the masks were forced to (cls: at build time)
        self.forced_density = model.__dict__.get('_bench_density', forced)
        self.density: Optional[float] = None
        self.macs: float = 0.0
        self.ms: Dict[Tuple[int, int], float] = {}  # (threads, batch) -> median latency

    def __call__(self, x: torch.Tensor):
        return self.model(x) if self.fn is None else self.fn(x)

    def prepare(self) -> None:
        if self.forced is not None and self.model.__dict__.get('_bench_forced') != self.forced:
            force_density(self.model, self.forced, self.seed)  # patterns made on the next call
            self.model.__dict__['_bench_forced'] = self.forced
        if self.sparse is not None:
            backbone = self.model if isinstance(self.model, SARResNet) else self.model.backbone
            backbone.set_sparse_infer(self.sparse)
        if self.impl is not None:
            set_sparse_impl(self.model, self.impl)


def _sparse_name(base: str, impl: str, args: argparse.Namespace) -> str:
    """``'<base> sparse'``, with the implementation when several are timed."""
    return f'{base} sparse' + (f' ({impl})' if len(args.sparse_impls) > 1 else '')


def prepare_backend(args: argparse.Namespace, model: nn.Module) -> None:
    """BN folding and memory format (:func:`prepare_from_args`), then ``--conv-backend``."""
    prepare_from_args(args, model)
    if args.conv_backend == 'onednn':
        use_onednn_convs(model)


def prepare_models(args: argparse.Namespace, x: torch.Tensor) -> Tuple[List[Entry], List[str]]:
    """Build, fuse, convert and check the models.

    Args:
        args (argparse.Namespace): Parsed arguments.
        x (Tensor): (1, 3, S, S) contiguous input.

    Returns:
        tuple: the entries (ResNet-50 first, with MACs and realised densities filled in), the
        notes of the output checks and, per forced density, the dense output (for the checks of
        :func:`compiled_entries`), realised density, MACs and the eager model.
    """
    notes = []
    dense_outputs: Dict[float, tuple] = {}  # forced density -> (dense output, density, MACs)
    fmt = memory_format_from_args(args)
    tag = f'G{args.groups}s2a2b1'
    entries = [Entry('ResNet-50', build_resnet50())]
    for density in args.densities:
        sar = build_sar(args.groups, density, args.seed)
        entries.append(Entry(f'SAR-R50 {tag} dense-masked', sar, False))
        entries += [Entry(_sparse_name(f'SAR-R50 {tag}', impl, args), sar, True, impl)
                    for impl in args.sparse_impls]
    # prepared without inference mode: weights made here (BN folding, layouts) stay normal tensors,
    # whose version counters let the sparse path cache its folded steps (inference tensors have
    # none, and would be refolded on every call); the timed calls run in inference mode
    with torch.no_grad():
        entries[0].macs = float(count_macs(
            prepare_for_inference(entries[0].model, channels_last=False, copy_model=True), x))
        checked = set()
        for entry in entries:
            model = entry.model
            if id(model) in checked:
                continue
            checked.add(id(model))
            entry.prepare()
            reference = _last(model(x)).clone() if not args.no_check else None
            prepare_backend(args, model)
            out = _last(model(x.contiguous(memory_format=fmt)))
            if not torch.isfinite(out).all():
                raise RuntimeError(f'{entry.name}: non-finite outputs')
            if reference is not None and not args.no_fuse_bn:
                notes.append(f'{entry.name}{_density_tag(model)}: BN-folded vs unfolded output, '
                             f'max rel. diff {_rel_diff(out, reference):.1e}')
            if isinstance(model, SARResNet):
                density = model.density().mean().item()
                macs = model.last_flops.mean().item()
                if not args.no_check:
                    model.set_sparse_infer(True)
                    for impl in args.sparse_impls:
                        set_sparse_impl(model, impl)
                        sparse = _last(model(x.contiguous(memory_format=fmt)))
                        notes.append(f'SAR-R50 {tag} at density {density:.2f}: sparse ({impl}) vs '
                                     f'dense output, max rel. diff {_rel_diff(sparse, out):.1e}; '
                                     f'MACs equal: {model.last_flops.mean().item() == macs}')
                for e in entries:
                    if e.model is model:
                        e.density, e.macs = density, macs
                dense_outputs[entry.forced_density] = (out.clone(), density, macs, model)
    return entries, notes, dense_outputs


def compiled_entries(args: argparse.Namespace, x: torch.Tensor, resnet_eager: Entry,
                     dense_outputs: Dict[float, tuple], notes: List[str]) -> List[Entry]:
    """ResNet-50 and SAR sparse (per density and implementation) built anew, prepared like the
    eager ones, moved to ``x``'s device and compiled (:func:`make_compiler`,
    :func:`compile_sar`); each checked on its first call (which compiles) against the eager dense
    output, the compile time noted.

    Args:
        args (argparse.Namespace): Parsed arguments.
        x (Tensor): (1, 3, S, S) input on the device, in the models' memory format.
        resnet_eager (Entry): The eager ResNet-50 entry (weights and MACs).
        dense_outputs (dict): Of :func:`prepare_models`.
        notes (list[str]): Receives the notes of the checks.

    Returns:
        list[Entry]: The compiled entries, ``compiled=True`` (the tables compare them with the
        compiled ResNet-50).
    """
    compiler = make_compiler(args.compile_mode, args.compile_freezing)
    tag = f'G{args.groups}s2a2b1'
    resnet_macs, resnet_eager = resnet_eager.macs, resnet_eager.model
    resnet = build_resnet50()
    prepare_backend(args, resnet)
    resnet.load_state_dict(resnet_eager.state_dict())  # the weights of the eager model
    resnet.to(x.device)
    entries = [Entry('ResNet-50 compiled', compiler(resnet), compiled=True)]
    entries[0].macs = resnet_macs
    for density in args.densities:
        _, realised, macs, eager = dense_outputs[density]
        for impl in args.sparse_impls:
            sar = build_sar(args.groups, density, args.seed)
            prepare_backend(args, sar)
            sar.load_state_dict(eager.state_dict())
            sar.to(x.device).set_sparse_infer(True)
            entry = Entry(_sparse_name(f'SAR-R50 {tag}', impl, args) + ' compiled',
                          compile_sar(sar, compiler, args.compile_refine), True, impl,
                          compiled=True)
            entry.density, entry.macs = realised, macs
            entries.append(entry)
    with torch.inference_mode():
        for entry in entries:
            entry.prepare()
            start = time.perf_counter()
            out = _last(entry(x))
            seconds = time.perf_counter() - start
            note = f'{entry.name}: first call (compiles) {seconds:.1f} s'
            if entry.density is not None and not args.no_check:
                reference = dense_outputs[entry.forced_density][0].to(out.device)
                note += (f'; vs eager dense output, max rel. diff {_rel_diff(out, reference):.1e}'
                         f'; MACs equal: {entry.model.last_flops.mean().item() == entry.macs}')
            notes.append(note)
    return entries


def _syncbn_to_bn(cfg) -> None:
    """Replace SyncBN by BN in a (nested) config, in place: one CPU process."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            cfg['type'] = 'BN'
        for value in cfg.values():
            _syncbn_to_bn(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _syncbn_to_bn(value)


def build_task_model(path: str, scope: str) -> nn.Module:
    """The eval-mode model of a det/seg config (``'mmdet::...'``/``'mmseg::...'`` or a file),
    built through the ``scope`` registry with random weights (no checkpoint is loaded); the SAR
    backbone's ``sparse_infer`` is left to the benchmark."""
    from importlib import import_module

    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope

    import mmdynamic.models  # noqa: F401  (registers the SAR models in mmdet / mmseg)
    cfg = get_config(path) if '::' in path else Config.fromfile(path)
    model_cfg = cfg.model
    _syncbn_to_bn(model_cfg)
    model_cfg.backbone.pop('sparse_infer', None)
    init_default_scope(scope)
    model = import_module(f'{scope}.registry').MODELS.build(model_cfg)
    model.eval()
    return model


def task_inputs(task: str, size: Tuple[int, int], divisor: int = 32):
    """A random image batch of 1 padded to ``divisor`` and the data samples ``predict`` needs.

    Returns:
        tuple: x (1, 3, H_pad, W_pad) and the samples (det: one ``DetDataSample`` with the image and
        pad shapes; seg: None, mmseg then takes the input's shape).
    """
    height, width = size
    padded = (-(-height // divisor) * divisor, -(-width // divisor) * divisor)
    x = torch.randn(1, 3, *padded)
    if task != 'det':
        return x, None
    from mmdet.structures import DetDataSample
    meta = dict(img_shape=(height, width), ori_shape=(height, width), pad_shape=padded,
                batch_input_shape=padded, scale_factor=(1.0, 1.0))
    return x, [DetDataSample(metainfo=meta)]


def _heads_fn(task: str, model: nn.Module, samples, size: Tuple[int, int]) -> Callable:
    """What follows the backbone in ``predict``, as a function of the backbone's outputs."""
    if task == 'det':
        def heads(*feats):
            x = model.neck(feats)
            proposals = model.rpn_head.predict(x, samples, rescale=False)
            return model.roi_head.predict(x, proposals, samples, rescale=False)
    else:
        metas = [dict(img_shape=size, ori_shape=size, pad_shape=size, padding_size=[0] * 4)]

        def heads(*feats):
            return model.decode_head.predict(list(feats), metas, model.test_cfg)
    return heads


def _whole_fn(task: str, model: nn.Module, samples) -> Callable:
    if task == 'det':
        return lambda x: model.predict(x, samples)
    return lambda x: model.predict(x)


def _heads_macs(task: str, model: nn.Module, x: torch.Tensor, samples) -> float:
    """MACs of neck and heads of ``model`` on its own backbone's features of ``x``."""
    with torch.no_grad():
        feats = tuple(model.backbone(x))
        return float(count_macs(model, feats, fn=_heads_fn(task, model, samples, x.shape[-2:])))


def prepare_task_models(args: argparse.Namespace, x: torch.Tensor,
                        samples) -> Tuple[List[Entry], List[str]]:
    """Build, prepare and check the det/seg models; MACs counted before the conv backend is set.

    Args:
        args (argparse.Namespace): Parsed arguments (``task`` det or seg).
        x (Tensor): (1, 3, H, W) contiguous input (padded).
        samples: The data samples of :func:`task_inputs`.

    Returns:
        tuple: the entries (per architecture: the static twin's backbone and whole model, then the
        SAR model's per density and sparse implementation) and the notes of the checks.
    """
    entries, notes = [], []
    fmt = memory_format_from_args(args)
    xf = x.contiguous(memory_format=fmt)
    for arch, sar_path, twin_path, scope in TASK_MODELS[args.task]:
        twin = build_task_model(twin_path, scope)
        sar = build_task_model(sar_path, scope)
        if not isinstance(sar.backbone, SARResNet):
            raise RuntimeError(f'{sar_path}: the backbone is {type(sar.backbone).__name__}, '
                               'not SARResNet')
        twin_name = f'{arch} {type(twin.backbone).__name__}-{twin.backbone.depth}'
        for model in (twin, sar):
            prepare_from_args(args, model)
        twin_macs = float(count_macs(twin.backbone, xf))
        twin_heads = _heads_macs(args.task, twin, xf, samples)
        per_density = []
        for density in args.densities:
            force_density(sar, density, args.seed)
            sar.backbone.set_sparse_infer(False)
            with torch.inference_mode():
                dense = [t.clone() for t in sar.backbone(xf)]
            realised = sar.backbone.density().mean().item()
            macs = sar.backbone.last_flops.mean().item()
            per_density.append((density, realised, macs, _heads_macs(args.task, sar, xf, samples)))
            if args.no_check:
                continue
            sar.backbone.set_sparse_infer(True)
            for impl in args.sparse_impls:
                set_sparse_impl(sar, impl)
                with torch.inference_mode():
                    sparse = sar.backbone(xf)
                diff = max(_rel_diff(a, b) for a, b in zip(sparse, dense))
                notes.append(f'{arch} SAR-R50 at density {realised:.2f}: sparse ({impl}) vs '
                             f'dense backbone outputs (all levels), max rel. diff {diff:.1e}; '
                             f'MACs equal: {sar.backbone.last_flops.mean().item() == macs}')
        if args.conv_backend == 'onednn':
            with torch.no_grad():  # normal tensors, as in prepare_models
                before = [t.clone() for t in twin.backbone(xf)]
                use_onednn_convs(twin)
                use_onednn_convs(sar)
                after = twin.backbone(xf)
            if not args.no_check:
                diff = max(_rel_diff(a, b) for a, b in zip(after, before))
                notes.append(f'{twin_name}: oneDNN vs PyTorch convolutions, backbone outputs '
                             f'max rel. diff {diff:.1e}')
        for part, fn_of in (('backbone', lambda m: m.backbone),
                            ('whole model', lambda m: _whole_fn(args.task, m, samples))):
            entry = Entry(twin_name, twin, fn=fn_of(twin), part=part)
            entry.macs = twin_macs + (twin_heads if part != 'backbone' else 0.0)
            entry.arch = arch
            entries.append(entry)
            for density, realised, macs, heads in per_density:
                for impl in args.sparse_impls:
                    entry = Entry(_sparse_name(f'{arch} SAR-R50', impl, args), sar, True, impl,
                                  density, fn_of(sar), part, args.seed)
                    entry.density = realised
                    entry.macs = macs + (heads if part != 'backbone' else 0.0)
                    entry.arch = arch
                    entries.append(entry)
    return entries, notes


def make_task_table(entries: List[Entry], threads: Sequence[int]) -> List[str]:
    """Markdown rows for det/seg: each SAR entry against its architecture's static twin on the
    same part (backbone or whole model), batch 1."""
    lines = ['| model | part | density | threads | latency (ms, median) | speed-up vs twin | '
             'MACs (G) | MACs ratio | quotient |',
             '|---|---|---|---|---|---|---|---|---|']
    for t in threads:
        for entry in entries:
            base = next(e for e in entries if e.arch == entry.arch and e.part == entry.part)
            ms = entry.ms[(t, 1)]
            speedup = base.ms[(t, 1)] / ms
            ratio = base.macs / entry.macs
            density = '-' if entry.density is None else f'{entry.density:.2f}'
            lines.append(f'| {entry.name} | {entry.part} | {density} | {t} | {ms:.1f} | '
                         f'{speedup:.2f}x | {entry.macs / 1e9:.2f} | {ratio:.2f} | '
                         f'{speedup / ratio:.2f} |')
    return lines


def _density_tag(model: nn.Module) -> str:
    if isinstance(model, SARResNet) and model.last_masks:
        return f' (density {model.density().mean().item():.2f})'
    return ''


CLOCKS = {'wall': time.perf_counter, 'cpu': time.thread_time}


def _time_cpu_clock(fns: List[Callable[[], object]], runs: int, warmup: int) -> List[float]:
    """Median CPU seconds of the calling thread per ``fn()``, round-robin as
    :func:`mmdynamic.utils.benchmark.time_round_robin` (which reads the wall clock)."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, out in zip(fns, times):
            start = time.thread_time()
            fn()
            out.append(time.thread_time() - start)
    return [statistics.median(t) for t in times]


def time_entries(entries: List[Entry], x: torch.Tensor, threads: int, runs: int,
                 warmup: int, clock: str = 'wall', device: Optional[torch.device] = None) -> None:
    """Time the entries round-robin (each round runs every entry once) into
    ``entry.ms[(threads, batch)]`` (median ms).

    Args:
        entries (list[Entry]): What to time (models and ``x`` on ``device``).
        x (Tensor): (B, 3, H, W) input in the models' memory format.
        threads (int): Intra-op threads.
        runs (int): Timed rounds.
        warmup (int): Untimed rounds first.
        clock (str): ``'wall'`` (latency; on CUDA by CUDA events, see
            :func:`mmdynamic.utils.benchmark.time_interleaved`) or ``'cpu'`` (CPU time of the
            calling thread: the latency a single-threaded run would have on an idle machine,
            without the time the scheduler gives to other processes; single-threaded CPU runs
            only). Defaults to ``'wall'``.
        device (torch.device, optional): Where the models run. Defaults to the CPU.
    """
    if clock == 'cpu' and threads != 1:
        raise ValueError(f'the cpu clock measures one thread, got threads={threads}')
    torch.set_num_threads(threads)

    def call(entry: Entry) -> None:
        entry.prepare()  # attribute switches (and, for det/seg, the forced density)
        entry(x)

    fns = [partial(call, entry) for entry in entries]
    with torch.inference_mode():
        seconds = (_time_cpu_clock(fns, runs, warmup) if clock == 'cpu' else
                   time_round_robin(fns, runs, warmup, device=device))
    for entry, value in zip(entries, seconds):
        entry.ms[(threads, x.shape[0])] = value * 1e3


def _parts(model: nn.Module) -> Dict[str, List[nn.Module]]:
    """The parts of a model to time: per SAR stage its base branch, mask generators, refine blocks,
    fusion (with the 1x1 transforms and the s = 4 pre-pool) and fusion block; for ResNet-50 its
    stages. Stem and head are what remains of the total."""
    if not isinstance(model, SARResNet):
        return {f'layer{i}': [getattr(model, f'layer{i}')] for i in range(1, 5)}
    parts = {}
    for i, stage in enumerate(model.stages):
        fusion = [stage.fuse] + [m for m in (stage.prepool, stage.base_transform,
                                             stage.refine_transform) if m is not None]
        parts.update({f'stage{i + 1} base': list(stage.base),
                      f'stage{i + 1} mask generators': list(stage.masks),
                      f'stage{i + 1} refine': list(stage.refine),
                      f'stage{i + 1} fusion + transforms': fusion,
                      f'stage{i + 1} fusion block': [stage.fusion_block]})
    parts['layer4'] = list(model.layer4)
    return parts


def time_parts(entry: Entry, x: torch.Tensor, threads: int, runs: int, warmup: int,
               clock: str = 'wall', device: Optional[torch.device] = None
               ) -> List[Tuple[str, float]]:
    """Mean time (ms, ``clock`` as :func:`time_entries`) of each part of ``entry``'s model
    (forward hooks; on CUDA each reading synchronises the device first), plus the total."""
    clock_fn = CLOCKS[clock]

    def now() -> float:
        synchronize(device)
        return clock_fn()

    totals: Dict[str, float] = {}
    handles = []
    for name, modules in _parts(entry.model).items():
        totals[name] = 0.0
        for module in modules:
            def pre(mod, args, name=name):
                mod._bench_start = now()

            def post(mod, args, out, name=name):
                totals[name] += now() - mod._bench_start

            handles += [module.register_forward_pre_hook(pre), module.register_forward_hook(post)]
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            entry.prepare()
            for _ in range(warmup):
                entry(x)
            for name in totals:
                totals[name] = 0.0
            start = now()
            for _ in range(runs):
                entry(x)
            total = (now() - start) * 1e3 / runs
    finally:
        for handle in handles:
            handle.remove()
    rows = [(name, value * 1e3 / runs) for name, value in totals.items()]
    return rows + [('stem, head and the rest', total - sum(v for _, v in rows)), ('total', total)]


def breakdown_table(entries: List[Entry], x: torch.Tensor, threads: int, runs: int,
                    warmup: int, density: float, clock: str = 'wall',
                    device: Optional[torch.device] = None) -> List[str]:
    """Markdown rows: the parts of ResNet-50 and of SAR sparse at ``density``."""
    sparse = [e for e in entries if e.sparse]
    chosen = min(sparse, key=lambda e: abs((e.density or 0) - density))
    lines = [f'Parts ({threads} thread(s), mean of {runs} runs): ResNet-50 and {chosen.name} '
             f'at density {chosen.density:.2f}', '', '| model | part | ms |', '|---|---|---|']
    for entry in (entries[0], chosen):
        for name, ms in time_parts(entry, x, threads, runs, warmup, clock, device):
            lines.append(f'| {entry.name} | {name} | {ms:.2f} |')
    return lines


def make_table(entries: List[Entry], threads: Sequence[int],
               batches: Sequence[int]) -> List[str]:
    """Markdown rows: latency, speed-up, MACs, MACs ratio and their quotient against the ResNet-50
    prepared the same way (eager rows against the eager one, compiled rows against the compiled
    one), per thread count and batch size; MACs per image."""
    lines = ['| model | density | threads | batch | latency (ms, median) | speed-up vs ResNet-50 | '
             'MACs (G) | MACs ratio | quotient |',
             '|---|---|---|---|---|---|---|---|---|']
    for t in threads:
        for batch in batches:
            for entry in entries:
                base = next(e for e in entries if e.compiled == entry.compiled)
                ms = entry.ms[(t, batch)]
                speedup = base.ms[(t, batch)] / ms
                ratio = base.macs / entry.macs
                density = '-' if entry.density is None else f'{entry.density:.2f}'
                lines.append(f'| {entry.name} | {density} | {t} | {batch} | {ms:.1f} | '
                             f'{speedup:.2f}x | {entry.macs / 1e9:.3f} | {ratio:.2f} | '
                             f'{speedup / ratio:.2f} |')
    return lines


def _header(args: argparse.Namespace, title: str, baseline_note: str) -> List[str]:
    bn_note = ('unfolded in all models' if args.no_fuse_bn else
               'folded into the convs in all models (mmcv fuse_conv_bn)')
    conv_note = ('every nn.Conv2d through oneDNN (use_onednn_convs)'
                 if args.conv_backend == 'onednn' else "eager PyTorch's own choice")
    return [
        title, '',
        f'- {device_note(device_from_args(args))}; torch {torch.__version__}',
        f'- median of {args.runs} runs after {args.warmup} warm-up runs, round-robin over the '
        f'models, `torch.inference_mode()`, denormals flushed; clock: ' +
        ('wall (latency)' if args.clock == 'wall' else
         'CPU time of the (single) timing thread, not wall time'),
        f'- BN: {bn_note}; memory format: {args.memory_format} in all models; convolutions: '
        f'{conv_note}; sparse path: {", ".join(args.sparse_impls)}',
        '- masks forced to a fixed random pattern per mask generator (seed '
        f'{args.seed}); density = realised mean over the masks; MACs = realised per image '
        f'({baseline_note} counted with mmdynamic.utils.flops.count_macs)',
        f'- {allocator_note()}',
    ] + ([f'- compiled rows: torch.compile(mode={args.compile_mode!r}, dynamic=None), Inductor '
          f'freezing {"on" if args.compile_freezing else "off"}; ResNet-50 whole, SAR by parts '
          '(compile_sar: stem eager; refine blocks ' +
          ('compiled, index building of the sparse path eager' if args.compile_refine else
           'eager') + '); speed-up against the compiled ResNet-50'] if args.compile else [])


def _to_device(entries: List[Entry], device: torch.device) -> None:
    """Move every model of ``entries`` to ``device`` (shared models once)."""
    for model in {id(e.model): e.model for e in entries}.values():
        model.to(device)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_flush_denormal(True)
    load_before = os.getloadavg()
    fmt = memory_format_from_args(args)
    device = device_from_args(args)
    if args.task == 'cls':
        x = torch.randn(1, 3, args.input_size, args.input_size)
        entries, notes, dense_outputs = prepare_models(args, x)
        _to_device(entries, device)
        if args.compile:
            entries += compiled_entries(args, x.to(device, memory_format=fmt), entries[0],
                                        dense_outputs, notes)
        title = (f'# SAR-R50 latency (batch {", ".join(map(str, args.batch_sizes))}, '
                 f'{args.input_size}x{args.input_size}, {device.type})')
        header = _header(args, title, 'ResNet-50')
        inputs = {b: torch.randn(b, 3, args.input_size, args.input_size) for b in args.batch_sizes}
    else:
        size = (QUICK_SIZES if args.quick else TASK_SIZES)[args.task]
        x, samples = task_inputs(args.task, size)
        entries, notes = prepare_task_models(args, x, samples)
        _to_device(entries, device)
        title = (f'# SAR-R50 latency, {args.task} (batch 1, {size[0]}x{size[1]}, input padded '
                 f'to {x.shape[-2]}x{x.shape[-1]}, {device.type})')
        header = _header(args, title, 'static twins and all necks / heads') + [
            '- whole model = `predict` (backbone, neck, heads, post-processing); its MACs = '
            'backbone + neck and heads counted on that model\'s own features']
        inputs = {1: x}
    for threads in args.threads:
        for batch, inp in inputs.items():
            time_entries(entries, inp.to(device, memory_format=fmt), threads, args.runs,
                         args.warmup, args.clock, device)
    load_after = os.getloadavg()
    report = header + [
        f'- load average (1 min) before/after: {load_before[0]:.2f}/{load_after[0]:.2f}',
    ] + [f'- check: {n}' for n in notes] + [''] + (
        make_table(entries, args.threads, args.batch_sizes) if args.task == 'cls' else
        make_task_table(entries, args.threads))
    if args.breakdown and args.task == 'cls':
        x = inputs[args.batch_sizes[0]].to(device, memory_format=fmt)
        report += [''] + breakdown_table([e for e in entries if not e.compiled], x,
                                         args.threads[0], args.runs, args.warmup,
                                         0.5 if 0.5 in args.densities else args.densities[0],
                                         args.clock, device)
    text = '\n'.join(report)
    emit_report(text, args.out)


if __name__ == '__main__':
    reexec_with_tuned_malloc()
    main()
