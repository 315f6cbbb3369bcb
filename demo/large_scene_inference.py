"""Whole-scene inference on co-registered GeoTIFFs (any size; memory bounded by --block-size).

One scene:
    python demo/large_scene_inference.py CONFIG optical=rgb.tif depth=dsm.tif \
        --weights iter_300.pth --out-dir out
Many scenes, sharded over processes with the standard launcher (one scene list, each rank
takes every WORLD_SIZE-th scene):
    torchrun --nproc-per-node 4 demo/large_scene_inference.py CONFIG --scene-list scenes.txt \
        --weights iter_300.pth --out-dir out
where each line of scenes.txt is ``NAME optical=rgb.tif depth=dsm.tif``.

Per scene it writes ``NAME_semantic.tif`` (uint8 class ids), ``NAME_panoptic.tif`` (int32,
class + instance id * 1000) - tiled, deflate, with the source CRS and geotransform -,
``NAME_instances.geojson`` (things as polygons in the source CRS with class, score, area) and
``NAME_summary.json`` (windows, seconds, windows/s, peak memory).
"""
import argparse
import json
import os
import os.path as osp
import resource
import sys
import time
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.dist import barrier, get_dist_info

from pmtseg_mm.apis import MultiModalInferencer, infer_scene, parse_modality_args
from pmtseg_mm.apis.inferencer import add_backend_arguments


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file or config name (file stem under configs/)')
    parser.add_argument('inputs', nargs='*', help='MODALITY=PATH per modality of one scene')
    parser.add_argument('--scene-list',
                        help='text file, one scene per line: NAME MODALITY=PATH ...')
    parser.add_argument('--weights', help='checkpoint (random weights without it)')
    parser.add_argument('--out-dir', default='outputs', help='output folder')
    parser.add_argument('--window', type=int, default=None,
                        help='window side in pixels (default: the config image_size, else 512)')
    parser.add_argument('--overlap', type=int, default=None,
                        help='pixels shared by neighbouring windows (default: window / 4)')
    parser.add_argument('--batch-size', type=int, default=4, help='windows per forward pass')
    parser.add_argument('--block-size', type=int, default=1024,
                        help='side of the blocks processed at once (bounds the memory)')
    parser.add_argument('--missing', nargs='+', default=[],
                        help='modalities that do not exist (filled as in training)')
    parser.add_argument('--resample', action='store_true',
                        help='reproject modalities whose CRS/geotransform/size differ onto the '
                        'first modality\'s grid (bilinear) instead of refusing them')
    parser.add_argument('--nodata', nargs='+', default=[], metavar='MODALITY=VALUE',
                        help='nodata value of a modality (overrides the raster\'s own and the '
                        'config\'s modalities.<name>.nodata; nan allowed); nodata pixels of any '
                        'modality are nodata in every output')
    parser.add_argument('--score-thr', type=float, default=0.5, help='minimum instance score')
    parser.add_argument('--gpkg', action='store_true',
                        help='also write the instances as a GeoPackage (<scene>_instances.gpkg)')
    parser.add_argument('--restart', action='store_true',
                        help='discard the progress of an interrupted run (<out>/<scene>_progress) '
                        'instead of resuming it')
    parser.add_argument('--device', default=None, help='cpu, cuda:0 ... (default: auto)')
    add_backend_arguments(parser)
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def read_scene_list(path: str) -> List[Tuple[str, Dict[str, str]]]:
    """``NAME MODALITY=PATH ...`` lines (blank lines and # comments skipped)."""
    scenes = []
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            parts = line.split('#')[0].split()
            if not parts:
                continue
            if len(parts) < 2 or '=' in parts[0]:
                raise SystemExit(f'error: {path}:{number}: expected NAME MODALITY=PATH ..., '
                                 f'got {line.strip()!r}')
            try:
                scenes.append((parts[0], parse_modality_args(parts[1:])))
            except ValueError as err:
                raise SystemExit(f'error: {path}:{number}: {err}') from None
    names = [n for n, _ in scenes]
    if len(set(names)) != len(names):
        raise SystemExit(f'error: {path}: scene names must be unique')
    return scenes


def init_dist_if_launched() -> None:
    """Join the process group when started by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on
    GPUs (mmengine's init_dist needs CUDA, so the group is initialised here)."""
    if int(os.environ.get('WORLD_SIZE', '1')) > 1 and not torch.distributed.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', '0')))
        torch.distributed.init_process_group('nccl' if cuda else 'gloo')


def window_default(inferencer: MultiModalInferencer) -> int:
    size = inferencer.cfg.get('image_size')
    return int(max(size)) if size else 512


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    if bool(args.inputs) == bool(args.scene_list):
        raise SystemExit('error: give either MODALITY=PATH inputs of one scene or --scene-list')
    if args.scene_list:
        scenes = read_scene_list(args.scene_list)
    else:
        try:
            inputs = parse_modality_args(args.inputs)
        except ValueError as err:
            raise SystemExit(f'error: {err}') from None
        scenes = [(osp.splitext(osp.basename(next(iter(inputs.values()))))[0], inputs)]
    nodata = {}
    for item in args.nodata:
        name, _, value = item.partition('=')
        try:
            nodata[name] = float(value)
        except ValueError:
            raise SystemExit(f'error: --nodata expects MODALITY=NUMBER (nan allowed), got '
                             f'{item!r}') from None
    init_dist_if_launched()
    rank, world_size = get_dist_info()
    device = args.device
    if device is None and torch.cuda.is_available() and args.backend == 'pytorch':
        device = f'cuda:{torch.cuda.current_device()}'
    try:
        inferencer = MultiModalInferencer(args.config, args.weights, device=device,
                                          backend=args.backend, onnx=args.onnx,
                                          onnx_threads=args.threads)
    except ValueError as err:
        raise SystemExit(f'error: {err}') from None
    window = args.window or window_default(inferencer)
    overlap = window // 4 if args.overlap is None else args.overlap
    classes = inferencer.dataset_meta['classes']
    num_things = inferencer.cfg.model.panoptic_head.num_things_classes
    summaries = []
    for name, paths in scenes[rank::world_size]:
        start = time.perf_counter()
        result = infer_scene(inferencer.model, inferencer.spec, paths,
                             osp.join(args.out_dir, name), classes, num_things, window=window,
                             overlap=overlap, batch_size=args.batch_size,
                             block_size=args.block_size, missing=args.missing,
                             resample=args.resample, nodata=nodata, score_thr=args.score_thr,
                             progress=not args.no_progress, restart=args.restart,
                             geopackage=args.gpkg)
        seconds = time.perf_counter() - start
        summary = dict(scene=name, rank=rank, height=result.height, width=result.width,
                       window=window, overlap=overlap, block_size=args.block_size,
                       windows_in_grid=result.windows_in_grid, windows_run=result.windows_run,
                       windows_nodata=result.windows_nodata,
                       blocks_resumed=result.blocks_resumed,
                       seconds=round(seconds, 2),
                       windows_per_s=round(result.windows_run / seconds, 2),
                       instances=result.num_instances, peak_rss_mb=round(peak_rss_mb(), 1),
                       semantic=result.semantic, panoptic=result.panoptic,
                       geojson=result.geojson, geopackage=result.geopackage)
        with open(osp.join(args.out_dir, f'{name}_summary.json'), 'w') as f:
            json.dump(summary, f, indent=1)
        print(json.dumps(summary), file=sys.stderr)
        summaries.append(summary)
    if world_size > 1:
        barrier()
    return summaries


if __name__ == '__main__':
    main()
