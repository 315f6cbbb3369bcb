"""Parameters, FLOPs, predict latency (all tasks and per task), training step time and peak memory
of models side by side, measured in one run and printed as one markdown table.

Every number carries its ratio against the first (baseline) config, so targets are read as ratios,
never as absolute timings of one machine. Each model is measured in fresh worker processes (one for
inference, one for training) so one model's peak memory does not hide another's.

    python tools/analysis_tools/benchmark_models.py --threads 2 --repeats 5    # the three R50 models
    python tools/analysis_tools/benchmark_models.py A.py B.py@model.neck.max_kv_tokens=256 \
        --size 512 --skip flops,train --out results.json

A config is ``PATH[@KEY=VALUE,KEY=VALUE...]``: keys are full paths from the config root
(``model.neck.pixel_decoder.encoder.num_layers=3``), values are parsed as mmengine's
``--cfg-options`` parses them (``DictAction``); every key must already exist in the config, except
that a key written ``+KEY`` adds a new entry to an existing dict
(``+model.test_cfg.lowres_postprocess=False``).
Relative paths resolve against the working directory, then the repository root.
"""
import argparse
import json
import math
import os
import os.path as osp
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.models.detectors import MaskFormer
from mmdet.models.layers import MSDeformAttnPixelDecoder
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.analysis import FlopAnalyzer
from mmengine.analysis.jit_handles import bmm_flop_jit, get_shape
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData, PixelData

import pmtseg_mm  # noqa: F401  (registers the package's components)
from pmtseg_mm.models.detectors.pmtseg import PMTSeg
from pmtseg_mm.models.seg_heads import MultiTaskFusionHead
from pmtseg_mm.structures import TASKS, fusion_switches
from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEFAULT_CONFIGS = (
    'configs/baselines/mask2former-ef_r50_1xb4-300e_synthetic-depth-128x128.py',
    'configs/baselines/mask2former-optical_r50_1xb4-300e_synthetic-depth-128x128.py',
    'configs/pmtseg/pmtseg_r50_1xb4-300e_synthetic-depth-128x128.py',
)
PARTS = ('flops', 'latency', 'tasks', 'train')  # what --skip may leave out
#: Table columns: (row key, header, number format).
COLUMNS = (
    ('params_m', 'params (M)', '{:.1f}'),
    ('gflops', 'GFLOPs', '{:.3g}'),
    ('latency_all_s', 'predict, all tasks (s)', '{:.3g}'),
    ('latency_semantic_s', 'semantic (s)', '{:.3g}'),
    ('latency_instance_s', 'instance (s)', '{:.3g}'),
    ('latency_panoptic_s', 'panoptic (s)', '{:.3g}'),
    ('train_step_s', 'train step (s)', '{:.3g}'),
    ('peak_mem_predict_mib', 'peak mem predict (MiB)', '{:.0f}'),
    ('peak_mem_train_mib', 'peak mem train (MiB)', '{:.0f}'),
)
Value = Union[float, str, None]  # a number, 'n/a (reason)', or None when skipped


class BenchmarkError(ValueError):
    """Bad benchmark input (config spec, override, option)."""


# ----------------------------------------------------------------------------- configs


def split_spec(spec: str) -> Tuple[str, List[Tuple[str, str]]]:
    """``'path.py@a.b=1,c.d=(1,2)'`` -> ``('path.py', [('a.b', '1'), ('c.d', '(1,2)')])``.

    Overrides are separated by commas outside brackets that are followed by ``KEY=``; other
    commas belong to the value (``k=1,2`` is a list, as with ``--cfg-options``).
    """
    path, sep, rest = spec.partition('@')
    if not sep:
        return spec, []
    pieces, depth, start = [], 0, 0
    for i, char in enumerate(rest):
        depth += char in '([{'
        depth -= char in ')]}'
        if char == ',' and depth == 0 and re.match(r'\+?[A-Za-z_][\w.]*=', rest[i + 1:]):
            pieces.append(rest[start:i])
            start = i + 1
    pieces.append(rest[start:])
    overrides = []
    for piece in pieces:
        key, eq, value = piece.partition('=')
        if not eq or not re.fullmatch(r'\+?[A-Za-z_]\w*(\.\w+)*', key) or value == '':
            raise BenchmarkError(
                f'{spec}: bad override {piece!r}; expected PATH.py@KEY=VALUE[,KEY=VALUE...] '
                f'with KEY a dotted config path such as model.neck.max_kv_tokens')
        overrides.append((key, value))
    return path, overrides


def resolve_config_path(path: str) -> str:
    """The config file at ``path`` (absolute, relative to the cwd, or to the repository root)."""
    for candidate in (path, osp.join(ROOT, path)):
        if osp.isfile(candidate):
            return osp.abspath(candidate)
    raise BenchmarkError(f'config file not found: {path} (looked in {os.getcwd()} and {ROOT})')


def check_key_path(cfg: Config, key: str, spec: str) -> None:
    """Raise unless every component of the dotted ``key`` exists in ``cfg``."""
    node: Any = dict(cfg.items())
    done = []
    for part in key.split('.'):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            where = '.'.join(done) or 'the config root'
            keys = (sorted(node) if isinstance(node, dict) else
                    f'indices 0..{len(node) - 1}' if isinstance(node, (list, tuple)) else
                    f'a {type(node).__name__} value, not a dict')
            raise BenchmarkError(f'{spec}: unknown key `{key}`: `{part}` is not in {where} '
                                 f'(has {keys}; write +KEY=VALUE to add a new key)')
        done.append(part)


def type_name(value: Any) -> str:
    """A config ``type``'s name, whether a registry string or a class (Python-style configs)."""
    return value if isinstance(value, str) else getattr(value, '__name__', repr(value))


def replace_type(node: Any, base: type, new: str) -> int:
    """Set ``type=new`` in every dict of a config tree whose ``type`` (a registry name or a
    class) is ``base`` or a subclass of it, in place.

    Returns:
        int: the number of dicts changed.
    """
    count = 0
    if isinstance(node, dict):
        if 'type' in node:
            cls = node['type'] if isinstance(node['type'], type) else MODELS.get(node['type'])
            if isinstance(cls, type) and issubclass(cls, base):
                node['type'] = new
                count += 1
        for value in node.values():
            count += replace_type(value, base, new)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += replace_type(value, base, new)
    return count


def check_model_types(node: Any, spec: str, path: str = 'model') -> None:
    """Raise one error naming the key of the first scoped ``type`` of a model config
    (``'mmpretrain.ConvNeXt'``) that cannot be resolved, e.g. for want of torchvision, which
    mmpretrain imports, before any worker process starts."""
    if isinstance(node, dict):
        name = node.get('type')
        if isinstance(name, str) and '.' in name:
            try:
                found, reason = MODELS.get(name), 'is not registered in its scope'
            except ImportError as exc:  # the scope's package fails to import
                found, reason = None, f'cannot be imported ({exc})'
            if found is None:
                hint = (': PMTSEG_TORCHVISION=1 bash tools/install.sh installs torchvision '
                        '(docs/install.md)' if 'torchvision' in reason else '')
                raise BenchmarkError(f'{spec}: `{path}.type`={name!r} {reason}{hint}')
        for key, value in node.items():
            if key != 'init_cfg':
                check_model_types(value, spec, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            check_model_types(value, spec, f'{path}.{i}')


def load_config(spec: str, pixel_decoder: Optional[str] = None) -> Tuple[str, Config]:
    """Config of a spec ``PATH[@KEY=VALUE,...]`` ready to build for benchmarking.

    Applies the overrides (each key must exist), checks that every scoped model ``type``
    resolves (:func:`check_model_types`), replaces every ``MSDeformAttnPixelDecoder``
    (or subclass, e.g. ``FastMSDeformAttnPixelDecoder``) by ``pixel_decoder`` when given, drops pretrained weights, and switches mmdet's
    ``MaskFormerFusionHead`` to its subclass ``MultiTaskFusionHead`` (same panoptic and
    instance post-processing, plus semantic) so the baselines can predict all three tasks.

    Returns:
        tuple: the row name (config stem plus ``@overrides``) and the config.
    """
    path, overrides = split_spec(spec)
    cfg = Config.fromfile(resolve_config_path(path))
    for key, value in overrides:
        if key.startswith('+'):  # a new key: its parent must exist
            key = key[1:]
            if '.' in key:
                check_key_path(cfg, key.rsplit('.', 1)[0], spec)
        else:
            check_key_path(cfg, key, spec)
        cfg.merge_from_dict({key: DictAction._parse_iterable(value)}, allow_list_keys=True)
    if pixel_decoder is not None:
        replace_type(cfg.model, MSDeformAttnPixelDecoder, pixel_decoder)
    check_model_types(cfg.model, spec)
    model_type = cfg.model.type
    model_cls = model_type if isinstance(model_type, type) else MODELS.get(model_type)
    if model_cls is None or not issubclass(model_cls, MaskFormer):
        raise BenchmarkError(f'{spec}: model.type must be a MaskFormer-family detector '
                             f'(Mask2Former, PMTSeg), got {cfg.model.type!r}')
    fusion = cfg.model.get('panoptic_fusion_head')
    if fusion is not None and type_name(fusion.get('type')) == 'MaskFormerFusionHead':
        fusion['type'] = 'MultiTaskFusionHead'
    drop_pretrained(cfg.model)  # random weights: no download, costs do not depend on them
    name = osp.splitext(osp.basename(path))[0]
    if overrides:
        name += '@' + ','.join(f'{k}={v}' for k, v in overrides)
    return name, cfg


def build_model(cfg: Config, device: str) -> MaskFormer:
    """The model of ``cfg`` on ``device`` in eval mode; stock MaskFormers store semantic results
    as PMTSeg does (mmdet's ``add_pred_to_datasample`` rejects them)."""
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device).eval()
    if not isinstance(model, PMTSeg):
        model.add_pred_to_datasample = PMTSeg.add_pred_to_datasample.__get__(model)
    return model


def num_params(model: torch.nn.Module) -> float:
    """Parameters in millions (trainable or not)."""
    return sum(p.numel() for p in model.parameters()) / 1e6


# ----------------------------------------------------------------------------- measurements


def synchronize(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def timed_median(step: Callable[[], Any], repeats: int, warmup: int, device: str) -> float:
    """Median wall time in seconds of ``repeats`` calls of ``step`` after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def model_inputs(model: MaskFormer, size: int, batch: int, device: str) -> torch.Tensor:
    """Normalised-looking random input of all modalities stacked, (batch, ΣC, size, size)."""
    channels = sum(model.data_preprocessor.modality_channels)
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, channels, size, size, generator=generator).to(device)


def image_meta(size: int) -> dict:
    shape = (size, size)
    return dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape,
                scale_factor=(1.0, 1.0))


def select_tasks(model: MaskFormer, tasks: Sequence[str]) -> dict:
    """Keyword arguments of ``predict`` / ``_forward`` that make ``model`` produce ``tasks``:
    PMTSeg takes them per call (one prompted head pass each); a stock Mask2Former's fusion head
    is switched by ``fusion_switches`` (one head pass, post-processed per task)."""
    if isinstance(model, PMTSeg):
        return dict(tasks=tuple(tasks))
    fusion = model.panoptic_fusion_head
    fusion.test_cfg.update(fusion_switches(tasks, isinstance(fusion, MultiTaskFusionHead)))
    return {}


@torch.no_grad()
def measure_latency(model: MaskFormer, tasks: Sequence[str], size: int, repeats: int,
                    warmup: int, device: str) -> float:
    """Median seconds of one batch-1 ``predict`` giving ``tasks`` (post-processing included)."""
    kwargs = select_tasks(model, tasks)
    inputs = model_inputs(model, size, 1, device)
    sample = DetDataSample(metainfo=image_meta(size))
    return timed_median(lambda: model.predict(inputs, [sample.clone()], **kwargs), repeats,
                        warmup, device)


class TensorForward(torch.nn.Module):
    """``model._forward`` (tensor mode) with fixed data samples and flat tensor outputs, so the
    jit tracer behind the FLOP counter sees a plain tensor-in, tensors-out module."""

    def __init__(self, model: MaskFormer, samples: List[DetDataSample], **kwargs) -> None:
        super().__init__()
        self.model = model
        self.samples = samples
        self.kwargs = kwargs

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        flat: List[torch.Tensor] = []

        def collect(node: Any) -> None:
            if isinstance(node, torch.Tensor):
                flat.append(node)
            elif isinstance(node, (list, tuple)):
                for item in node:
                    collect(item)

        collect(self.model._forward(inputs, self.samples, **self.kwargs))
        return tuple(flat)


def baddbmm_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``baddbmm(input, batch1, batch2)``: the multiply-adds of ``bmm(batch1, batch2)`` (what
    ``nn.MultiheadAttention`` runs for q·kᵀ with a mask)."""
    return bmm_flop_jit(inputs[1:3], outputs)


def sdpa_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``scaled_dot_product_attention(q, k, v)``: q·kᵀ plus attention·v multiply-adds."""
    q, k, v = (get_shape(x) for x in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


def native_mha_flop_jit(inputs: List[Any], outputs: List[Any]) -> int:
    """``_native_multi_head_attention`` (``nn.MultiheadAttention``'s eval fast path): the q/k/v
    and output projections plus q·kᵀ and attention·v multiply-adds."""
    batch, len_q, dims = get_shape(inputs[0])
    len_k = get_shape(inputs[1])[-2]
    return batch * (2 * len_q * dims * dims + 2 * len_k * dims * dims + 2 * len_q * len_k * dims)


@torch.no_grad()
def measure_flops(model: MaskFormer, size: int, device: str) -> Tuple[Value, str]:
    """GFLOPs of the tensor-mode forward at batch 1 (all of ``test_cfg``'s tasks for PMTSeg),
    counted by mmengine's fvcore-style ``FlopAnalyzer`` (one multiply-add = one FLOP), with
    handles added for ``baddbmm`` and the fused attention operators.

    Returns:
        tuple: GFLOPs (or ``'n/a (reason)'`` when tracing fails) and a note listing the
        operators the counter has no handle for (their cost is not counted).
    """
    kwargs = select_tasks(model, TASKS)
    inputs = model_inputs(model, size, 1, device)
    analyzer = FlopAnalyzer(
        TensorForward(model, [DetDataSample(metainfo=image_meta(size))], **kwargs), (inputs, ))
    analyzer.set_op_handle('aten::baddbmm', baddbmm_flop_jit,
                           'aten::scaled_dot_product_attention', sdpa_flop_jit,
                           'aten::_native_multi_head_attention', native_mha_flop_jit)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            total = analyzer.total()
    except Exception as exc:  # tracing data-dependent code may fail: report, do not crash
        reason = (str(exc).strip().splitlines() or [''])[0]
        reason = reason if len(reason) <= 120 else reason[:120] + '…'
        return f'n/a (jit trace failed: {type(exc).__name__}: {reason})', ''
    skipped = analyzer.unsupported_ops()
    note = ', '.join(f'{op.split("::")[-1]}×{n}' for op, n in sorted(skipped.items()))
    return total / 1e9, note


def synthetic_train_sample(size: int, num_things: int, num_stuff: int,
                           seed: int) -> DetDataSample:
    """A sample with real targets: up to two stuff regions (upper/lower half; ignore label 255
    without stuff classes) in ``gt_sem_seg`` and one rectangular instance of each thing class
    (labels, BitmapMasks, boxes), also written into ``gt_sem_seg``."""
    rng = np.random.default_rng(seed)
    stuff = [num_things + k for k in range(min(2, num_stuff))] or [255]
    sem = np.full((size, size), stuff[0], dtype=np.int64)
    sem[size // 2:] = stuff[-1]
    masks = np.zeros((num_things, size, size), dtype=np.uint8)
    boxes = []
    for k in range(num_things):
        h, w = rng.integers(size // 8, size // 3, size=2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        masks[k, y:y + h, x:x + w] = 1
        sem[y:y + h, x:x + w] = k
        boxes.append([x, y, x + w, y + h])
    sample = DetDataSample(metainfo=image_meta(size))
    sample.gt_instances = InstanceData(
        labels=torch.arange(num_things),
        masks=BitmapMasks(masks, size, size),
        bboxes=HorizontalBoxes(torch.tensor(boxes, dtype=torch.float32)))
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    return sample


def measure_train_step(model: MaskFormer, size: int, batch: int, repeats: int, warmup: int,
                       device: str) -> float:
    """Median seconds of one training step (``loss`` forward, backward, AdamW step) in train
    mode on ``batch`` synthetic samples of ``size``² with targets."""
    model.train()
    head = model.panoptic_head
    samples = [synthetic_train_sample(size, head.num_things_classes, head.num_stuff_classes, i)
               for i in range(batch)]
    inputs = model_inputs(model, size, batch, device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)

    def step() -> None:
        losses = model.loss(inputs, [s.clone().to(device) for s in samples])
        loss, _ = model.parse_losses(losses)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return timed_median(step, repeats, warmup, device)


def reset_peak_memory(device: str) -> None:
    if device.startswith('cuda'):
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mib(device: str) -> float:
    """CUDA: max allocated since the last reset; CPU: this process's peak RSS (Linux KiB)."""
    if device.startswith('cuda'):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- worker


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_worker(args: argparse.Namespace) -> None:
    """Measure one model (``--spec``) for one kind (``--worker infer|train``) and write the
    results to ``--result`` after every measurement, so a crash keeps what was measured."""
    if args.threads:
        torch.set_num_threads(args.threads)
    init_default_scope('mmdet')
    result: Dict[str, Value] = dict(base_rss_mib=peak_memory_mib('cpu'))

    def save(**values: Value) -> None:
        result.update(values)
        with open(args.result, 'w') as f:
            json.dump(result, f)

    name, cfg = load_config(args.spec, args.pixel_decoder)
    prefix = f'{args.label} {name}'
    log(f'{prefix}: building the model ({args.worker} worker)')
    model = build_model(cfg, args.device)
    save(params_m=num_params(model))
    reset_peak_memory(args.device)
    if args.worker == 'train':
        log(f'{prefix}: training step ({args.train_size}², batch {args.train_batch})')
        save(train_step_s=measure_train_step(model, args.train_size, args.train_batch,
                                             args.repeats, args.warmup, args.device))
        save(peak_mem_train_mib=peak_memory_mib(args.device))
        return
    skip = set(args.skip)
    runs = ([('all', TASKS)] if 'latency' not in skip else []) + (
        [(task, (task, )) for task in TASKS] if 'tasks' not in skip else [])
    for key, tasks in runs:
        log(f'{prefix}: predict latency, {"all tasks" if key == "all" else key}')
        save(**{f'latency_{key}_s': measure_latency(model, tasks, args.size, args.repeats,
                                                    args.warmup, args.device)})
    if runs:  # the peak before the FLOP count, whose tracing allocates for itself
        save(peak_mem_predict_mib=peak_memory_mib(args.device))
    if 'flops' not in skip:
        log(f'{prefix}: FLOPs')
        gflops, note = measure_flops(model, args.size, args.device)
        save(gflops=gflops, flops_uncounted=note)


# ----------------------------------------------------------------------------- main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0], formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('configs', nargs='*', default=list(DEFAULT_CONFIGS),
                        help='PATH[@KEY=VALUE,...] specs; the first is the baseline of the '
                        'ratios (default: Mask2Former-EF R50, optical-only Mask2Former R50, '
                        'PMTSeg R50 on the synthetic data)')
    parser.add_argument('--device', choices=('cpu', 'cuda'),
                        default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads (and OMP/MKL threads) of the workers')
    parser.add_argument('--repeats', type=int, default=3, help='timed passes (median)')
    parser.add_argument('--warmup', type=int, default=1, help='untimed passes before them')
    parser.add_argument('--size', type=int, default=512, help='square predict input size')
    parser.add_argument('--train-size', type=int, default=256, help='square training size')
    parser.add_argument('--train-batch', type=int, default=2, help='training batch size')
    parser.add_argument('--skip', default='',
                        help=f'comma-separated parts to leave out, among {",".join(PARTS)}')
    parser.add_argument('--pixel-decoder', default=None, metavar='TYPE',
                        help='registered type replacing every MSDeformAttnPixelDecoder (or '
                        'subclass) of the models, so both sides use one implementation')
    parser.add_argument('--out', default=None, help='also write the rows to this JSON file')
    parser.add_argument('--worker', choices=('infer', 'train'), help=argparse.SUPPRESS)
    parser.add_argument('--spec', help=argparse.SUPPRESS)
    parser.add_argument('--result', help=argparse.SUPPRESS)
    parser.add_argument('--label', default='', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.skip = [part for part in args.skip.split(',') if part]
    unknown = sorted(set(args.skip) - set(PARTS))
    if unknown:
        parser.error(f'--skip: unknown part(s) {unknown}; choose among {list(PARTS)}')
    for option in ('repeats', 'size', 'train_size', 'train_batch', 'threads'):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f'--{option.replace("_", "-")} must be >= 1, got {value}')
    if args.warmup < 0:
        parser.error(f'--warmup must be >= 0, got {args.warmup}')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.pixel_decoder is not None and MODELS.get(args.pixel_decoder) is None:
        parser.error(f'--pixel-decoder: {args.pixel_decoder!r} is not a registered model type')
    return args


def run_subprocess(args: argparse.Namespace, spec: str, kind: str, label: str) -> dict:
    """Run one worker in a fresh process; its results, or 'n/a' entries when it failed."""
    env = dict(os.environ)
    if args.threads:
        env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    with tempfile.TemporaryDirectory() as tmp:
        result_file = osp.join(tmp, 'result.json')
        command = [sys.executable, osp.abspath(__file__), '--worker', kind, '--spec', spec,
                   '--result', result_file, '--label', label, '--device', args.device,
                   '--repeats', str(args.repeats), '--warmup', str(args.warmup),
                   '--size', str(args.size), '--train-size', str(args.train_size),
                   '--train-batch', str(args.train_batch), '--skip', ','.join(args.skip)]
        if args.threads:
            command += ['--threads', str(args.threads)]
        if args.pixel_decoder:
            command += ['--pixel-decoder', args.pixel_decoder]
        code = subprocess.run(command, env=env).returncode
        result = {}
        if osp.exists(result_file):
            with open(result_file) as f:
                result = json.load(f)
    if code != 0:
        log(f'{label} {kind} worker failed with exit code {code} (its output is above)')
        result['failed'] = f'n/a ({kind} worker exit code {code})'
    return result


def expected_keys(kind: str, skip: Sequence[str]) -> List[str]:
    """Row keys a worker of ``kind`` fills when nothing fails."""
    if kind == 'train':
        return ['train_step_s', 'peak_mem_train_mib']
    keys = ['params_m']
    keys += ['latency_all_s'] if 'latency' not in skip else []
    keys += [f'latency_{t}_s' for t in TASKS] if 'tasks' not in skip else []
    keys += ['peak_mem_predict_mib'] if {'latency', 'tasks'} - set(skip) else []
    keys += ['gflops'] if 'flops' not in skip else []
    return keys


def benchmark(args: argparse.Namespace) -> List[dict]:
    """Measure every config in its own worker processes; one row dict per config."""
    names = [load_config(spec, args.pixel_decoder)[0] for spec in args.configs]  # fail early
    rows = []
    for i, (spec, name) in enumerate(zip(args.configs, names)):
        label = f'[{i + 1}/{len(args.configs)}]'
        row: Dict[str, Any] = dict(name=name, spec=spec)
        kinds = ['infer'] + (['train'] if 'train' not in args.skip else [])
        for kind in kinds:
            result = run_subprocess(args, spec, kind, label)
            failed = result.pop('failed', None)
            row.setdefault('base_rss_mib', result.pop('base_rss_mib', None))
            row.update(result)
            for key in expected_keys(kind, args.skip):
                row.setdefault(key, failed)
        log(f'{label} {name}: ' + ', '.join(f'{key}={row.get(key)}' for key, _, _ in COLUMNS))
        rows.append(row)
    for row in rows:  # ratios against the first row
        for key, _, _ in COLUMNS:
            value, base = row.get(key), rows[0].get(key)
            numbers = all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0
                          for v in (value, base))
            row[key.rsplit('_', 1)[0] + '_ratio'] = value / base if numbers else None
    return rows


def format_cell(row: dict, key: str, fmt: str) -> str:
    value = row.get(key)
    if value is None:
        return '-'
    if isinstance(value, str):
        return value
    ratio = row[key.rsplit('_', 1)[0] + '_ratio']
    return fmt.format(value) + ('' if ratio is None else f' (×{ratio:.2f})')


def format_table(rows: List[dict], args: argparse.Namespace) -> str:
    """The markdown table (value and ratio against the first row in each cell) and its notes."""
    memory = 'CUDA max allocated' if args.device == 'cuda' else 'peak RSS'
    headers = [h.replace('peak mem', f'{memory},') for _, h, _ in COLUMNS]
    lines = ['| model | ' + ' | '.join(headers) + ' |', '|---' * (len(COLUMNS) + 1) + '|']
    for row in rows:
        cells = [format_cell(row, key, fmt) for key, _, fmt in COLUMNS]
        lines.append(f'| {row["name"]} | ' + ' | '.join(cells) + ' |')
    threads = args.threads or torch.get_num_threads()
    notes = [
        '',
        f'Device {args.device}, {threads} thread(s); ratios (×) against the first row. Times: '
        f'median of {args.repeats} after {args.warmup} warm-up pass(es).',
        f'Predict: batch 1, {args.size}×{args.size}, post-processing to results included; "all '
        'tasks" is one predict call giving semantic + instance + panoptic (PMTSeg: the prompts '
        'of all tasks decoded by the head, in one call since the batched task passes; '
        'Mask2Former: one head pass post-processed into the three tasks by '
        'MultiTaskFusionHead, the MaskFormerFusionHead subclass that adds semantic).',
        f'FLOPs: mmengine FlopAnalyzer (fvcore-style jit trace, one multiply-add = one FLOP) of '
        f'the tensor-mode forward (`_forward`: backbone(s), neck / pixel decoder, transformer '
        f'decoder for every task) at batch 1, {args.size}×{args.size}. Not counted: data '
        'pre-processing, post-processing, and operators the counter has no handle for (listed '
        'below: elementwise ops by fvcore convention, custom autograd functions such as a fast '
        'deformable-attention kernel - FLOPs do not depend on the implementation, so count them '
        'without --pixel-decoder).',
        f'Train step: model.loss forward + backward + AdamW step, train mode, batch '
        f'{args.train_batch}, {args.train_size}×{args.train_size}, synthetic targets (one '
        'instance per thing class, two stuff regions).',
        f'Memory: {memory} of a fresh process per model and kind (predict: the model plus '
        'the timed predicts; train: the model plus the training steps).',
    ]
    if args.device == 'cpu':
        base = [row['base_rss_mib'] for row in rows if row.get('base_rss_mib')]
        if base:
            notes.append(f'Peak RSS includes the imports (≈ {max(base):.0f} MiB before building).')
    if args.pixel_decoder:
        notes.append(f'Every MSDeformAttnPixelDecoder (or subclass) replaced by '
                     f'{args.pixel_decoder}.')
    for row in rows:
        if row.get('flops_uncounted'):
            notes.append(f'{row["name"]}: operators not counted: {row["flops_uncounted"]}.')
    return '\n'.join(lines + notes)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    init_default_scope('mmdet')
    if args.worker:
        run_worker(args)
        return
    try:
        rows = benchmark(args)
    except BenchmarkError as exc:
        raise SystemExit(f'error: {exc}') from None
    print(format_table(rows, args), flush=True)
    if args.out:
        settings = {k: v for k, v in vars(args).items()
                    if k not in ('worker', 'spec', 'result', 'label', 'out')}
        with open(args.out, 'w') as f:
            json.dump(dict(settings=settings, rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
