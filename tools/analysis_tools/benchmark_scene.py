"""Whole-scene inference at city sizes: windows/s and peak RSS per scene size.

Usage::

    python tools/analysis_tools/benchmark_scene.py CONFIG [--weights CKPT] \
        [--sizes 2048 8192 16384] [--threads 2] [--work-dir work_dirs/benchmark_scene]

For each size it writes a georeferenced optical (uint8, 3 bands) + DSM (float32) scene of that
side (block by block, so generating it needs no scene-sized memory), then runs
``demo/large_scene_inference.py`` on it in a fresh process with ``--threads`` torch threads and
reads the summary that script writes (windows/s, peak RSS of that process). Prints one table row
per size and writes ``results.json`` in the work dir. Scenes are kept for reruns
(``--sizes 16384`` needs about 1.3 GB of disk). Not run in CI: the 16384² scene takes tens of
minutes on 2 cores.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
from typing import List, Optional

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file (the model and its modality contract)')
    parser.add_argument('--weights', help='checkpoint (random weights without it)')
    parser.add_argument('--sizes', type=int, nargs='+', default=[2048, 8192, 16384])
    parser.add_argument('--threads', type=int, default=2, help='torch threads of each run')
    parser.add_argument('--batch-size', type=int, default=16, help='windows per forward pass')
    parser.add_argument('--work-dir', default='work_dirs/benchmark_scene')
    args = parser.parse_args(argv)
    if min(args.sizes) < 256 or args.threads < 1:
        parser.error('--sizes must be >= 256 and --threads >= 1')
    return args


def write_scene(folder: str, size: int, block: int = 2048) -> dict:
    """Random 8-bit optical and a DSM of heights above ground (0-10 m), EPSG:32631, 0.5 m."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    os.makedirs(folder, exist_ok=True)
    paths = dict(optical=osp.join(folder, f'optical_{size}.tif'),
                 depth=osp.join(folder, f'dsm_{size}.tif'))
    if all(osp.isfile(p) for p in paths.values()):
        return paths
    rng = np.random.default_rng(size)
    profile = dict(driver='GTiff', width=size, height=size, crs='EPSG:32631', tiled=True,
                   blockxsize=256, blockysize=256, compress='deflate', BIGTIFF='IF_SAFER',
                   transform=from_origin(500000.0, 4800000.0, 0.5, 0.5))
    with rasterio.open(paths['optical'], 'w', count=3, dtype='uint8', **profile) as optical, \
            rasterio.open(paths['depth'], 'w', count=1, dtype='float32', **profile) as dsm:
        for y in range(0, size, block):
            for x in range(0, size, block):
                h, w = min(block, size - y), min(block, size - x)
                window = Window(x, y, w, h)
                optical.write(rng.integers(0, 256, (3, h, w), dtype=np.uint8), window=window)
                dsm.write(rng.uniform(0, 10, (1, h, w)).astype(np.float32), window=window)
    return paths


def main(argv: Optional[List[str]] = None) -> List[dict]:
    args = parse_args(argv)
    rows = []
    for size in args.sizes:
        paths = write_scene(osp.join(args.work_dir, 'scenes'), size)
        out_dir = osp.join(args.work_dir, f'out_{size}')
        cmd = [sys.executable, osp.join(ROOT, 'demo', 'large_scene_inference.py'), args.config,
               f"optical={paths['optical']}", f"depth={paths['depth']}", '--out-dir', out_dir,
               '--batch-size', str(args.batch_size), '--device', 'cpu', '--no-progress',
               '--restart']
        if args.weights:
            cmd += ['--weights', args.weights]
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads),
                   MKL_NUM_THREADS=str(args.threads))
        subprocess.run(cmd, check=True, env=env)
        stem = osp.splitext(osp.basename(paths['optical']))[0]
        with open(osp.join(out_dir, f'{stem}_summary.json')) as f:
            summary = json.load(f)
        rows.append(dict(size=size, windows=summary['windows_run'],
                         seconds=summary['seconds'], windows_per_s=summary['windows_per_s'],
                         peak_rss_mb=summary['peak_rss_mb'], instances=summary['instances'],
                         threads=args.threads))
        print(f"{size}x{size}: {rows[-1]['windows']} windows, {rows[-1]['windows_per_s']} "
              f"windows/s, peak RSS {rows[-1]['peak_rss_mb']} MB, "
              f"{rows[-1]['instances']} instances", flush=True)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(rows, f, indent=1)
    return rows


if __name__ == '__main__':
    main()
