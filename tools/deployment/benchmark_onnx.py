"""Per-window latency of PyTorch eager against onnxruntime for PMTSeg and Mask2Former-EF, and
whole-scene windows/s with both backends, in one run with the same threads (docs/deployment.md).

    python tools/deployment/benchmark_onnx.py --threads 2 [--window 512] [--repeats 3]

Per model (random weights: the costs do not depend on them) the graph is exported to a
temporary folder, then one normalised window is timed through the network only (PyTorch
``_forward`` against the graph's session call) and through ``predict`` (network + the same
post-processing: PMTSeg's three tasks, Mask2Former's ``test_cfg`` tasks). The scene part runs
``infer_scene`` on a generated GeoTIFF scene with the tiny PMTSeg through both backends.
"""
import argparse
import os.path as osp
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config

import pmtseg_mm  # noqa: F401  (registers the components)
from pmtseg_mm.apis import ModalitySpec, find_config, infer_scene
from pmtseg_mm.deployment.onnx_backend import OnnxRuntimeBackend
from pmtseg_mm.deployment.onnx_export import build_model, export_onnx
from pmtseg_mm.models.detectors import PMTSeg
from pmtseg_mm.structures import TASKS
from pmtseg_mm.utils import drop_pretrained

MODELS = dict(pmtseg='pmtseg_r50_1xb4-300e_ubcv2-512x512',
              ef='mask2former-ef_r50_1xb4-300e_ubcv2-512x512')
SCENE_CONFIG = 'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--pmtseg', default=MODELS['pmtseg'], help='PMTSeg config (name/path)')
    parser.add_argument('--ef', default=MODELS['ef'], help='Mask2Former-EF config (name/path)')
    parser.add_argument('--window', type=int, default=512, help='window side of the latency')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch and onnxruntime intra-op threads')
    parser.add_argument('--repeats', type=int, default=3, help='timed calls (median)')
    parser.add_argument('--scene-config', default=SCENE_CONFIG, help='model of the scene part')
    parser.add_argument('--scene-size', type=int, default=512, help='scene side in pixels')
    parser.add_argument('--scene-window', type=int, default=128, help='scene window side')
    args = parser.parse_args(argv)
    for option in ('window', 'threads', 'repeats', 'scene_size', 'scene_window'):
        if getattr(args, option) < 1:
            parser.error(f'--{option.replace("_", "-")} must be >= 1')
    return args


def median_seconds(step: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``step`` after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def load(name: str) -> Config:
    cfg = Config.fromfile(find_config(name))
    drop_pretrained(cfg.model)
    return cfg


@torch.no_grad()
def window_latency(name: str, window: int, repeats: int, threads: int,
                   folder: str) -> Dict[str, float]:
    """Milliseconds per window of the network and of ``predict`` with both backends."""
    cfg = load(name)
    torch.manual_seed(0)
    model = build_model(cfg)
    onnx_path = osp.join(folder, f'{osp.basename(name)}.onnx')
    tasks = TASKS if isinstance(model, PMTSeg) else None
    export_onnx(cfg, model, onnx_path, tasks=tasks, window=window)
    spec = ModalitySpec(cfg)
    backend = OnnxRuntimeBackend(onnx_path, threads)
    shell = backend.attach(build_model(cfg), spec.names, spec.channels)
    shape = (window, window)
    meta = dict(img_shape=shape, ori_shape=shape, pad_shape=shape, batch_input_shape=shape,
                scale_factor=(1.0, 1.0))
    x = torch.randn(1, model.data_preprocessor.num_channels, window, window,
                    generator=torch.Generator().manual_seed(0))
    kwargs = dict(tasks=TASKS) if tasks else {}
    names = [n for n in backend.meta['outputs'] if n != 'sem_scores']
    row = dict(
        torch_net=median_seconds(lambda: model._forward(x, [DetDataSample(metainfo=meta)],
                                                        **kwargs), repeats),
        ort_net=median_seconds(lambda: backend.run(x, names), repeats),
        torch_predict=median_seconds(lambda: model.predict(x, [DetDataSample(metainfo=meta)],
                                                           **kwargs), repeats),
        ort_predict=median_seconds(lambda: shell.predict(x, [DetDataSample(metainfo=meta)],
                                                         **kwargs), repeats))
    return {k: v * 1000 for k, v in row.items()}


def scene_speed(name: str, size: int, window: int, threads: int, folder: str) -> Dict[str, float]:
    """Whole-scene windows/s of ``infer_scene`` on a generated size x size GeoTIFF scene."""
    import rasterio
    from rasterio.transform import from_origin
    cfg = load(name)
    torch.manual_seed(0)
    model = build_model(cfg)
    onnx_path = osp.join(folder, 'scene.onnx')
    export_onnx(cfg, model, onnx_path, tasks=('semantic', 'instance'), window=window)
    spec = ModalitySpec(cfg)
    shell = OnnxRuntimeBackend(onnx_path, threads).attach(build_model(cfg), spec.names,
                                                          spec.channels)
    rng = np.random.RandomState(0)
    paths = {}
    for modality, channels in zip(spec.names, spec.channels):
        data = (rng.randint(0, 255, (channels, size, size)).astype(np.uint8) if channels == 3
                else rng.uniform(0, 10, (channels, size, size)).astype(np.float32))
        paths[modality] = osp.join(folder, f'{modality}.tif')
        with rasterio.open(paths[modality], 'w', driver='GTiff', width=size, height=size,
                           count=channels, dtype=data.dtype, crs='EPSG:32631',
                           transform=from_origin(5e5, 4.8e6, 0.5, 0.5)) as f:
            f.write(data)
    classes = cfg.model.panoptic_head.class_names
    num_things = cfg.model.panoptic_head.num_things_classes
    speed = {}
    for key, net in (('torch', model), ('ort', shell)):
        start = time.perf_counter()
        result = infer_scene(net, spec, paths, osp.join(folder, key), classes, num_things,
                             window=window, overlap=window // 4, progress=False, restart=True)
        speed[key] = result.windows_run / (time.perf_counter() - start)
    return speed


def main(argv: Optional[List[str]] = None) -> str:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for key in ('pmtseg', 'ef'):
            rows[key] = window_latency(getattr(args, key), args.window, args.repeats,
                                       args.threads, folder)
        scene = scene_speed(args.scene_config, args.scene_size, args.scene_window,
                            args.threads, folder)
    labels = dict(pmtseg=osp.basename(args.pmtseg) + ' (3 tasks)', ef=osp.basename(args.ef))
    lines = [f'{args.window}x{args.window} window, batch 1, {args.threads} threads, median of '
             f'{args.repeats}; ms per window',
             '',
             '| model | part | PyTorch eager | onnxruntime | ort speed-up |',
             '|---|---|---|---|---|']
    for key, row in rows.items():
        for part in ('net', 'predict'):
            t, o = row[f'torch_{part}'], row[f'ort_{part}']
            lines.append(f'| {labels[key]} | {"network" if part == "net" else "predict"} | '
                         f'{t:.1f} | {o:.1f} | {t / o:.2f}x |')
    for part in ('net', 'predict'):
        ratios = [rows['pmtseg'][f'{b}_{part}'] / rows['ef'][f'{b}_{part}']
                  for b in ('torch', 'ort')]
        lines.append(f'| PMTSeg / EF | {"network" if part == "net" else "predict"} | '
                     f'{ratios[0]:.2f}x | {ratios[1]:.2f}x | |')
    lines += ['', f'whole scene ({args.scene_config}, {args.scene_size}x{args.scene_size}, '
              f'{args.scene_window}-px windows): PyTorch {scene["torch"]:.1f} windows/s, '
              f'onnxruntime {scene["ort"]:.1f} windows/s ({scene["ort"] / scene["torch"]:.2f}x)']
    table = '\n'.join(lines)
    print(table)
    return table


if __name__ == '__main__':
    main()
