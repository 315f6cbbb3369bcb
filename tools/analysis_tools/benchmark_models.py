"""Parameters, forward latency and peak memory of models side by side, measured in one run.

Prints each model's numbers and its ratio against the first (baseline) config, so targets are
read as ratios, never as absolute timings of one machine.

    python tools/analysis_tools/benchmark_models.py \
        configs/baselines/mask2former-ef_r50_1xb4-300e_synthetic-depth-128x128.py \
        configs/pmtseg/pmtseg_r50_1xb4-300e_synthetic-depth-128x128.py --size 512 --repeats 3
"""
import argparse
import time
from typing import List, Optional

import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.registry import init_default_scope

import pmtseg_mm  # noqa: F401
from pmtseg_mm.utils import drop_pretrained


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+', help='configs; the first is the baseline')
    parser.add_argument('--size', type=int, default=512, help='square input size')
    parser.add_argument('--repeats', type=int, default=3, help='timed forward passes')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return parser.parse_args()


def build(config: str, device: str) -> torch.nn.Module:
    cfg = Config.fromfile(config)
    drop_pretrained(cfg.model)  # random weights: latency does not depend on them
    return MODELS.build(cfg.model).to(device).eval()


@torch.no_grad()
def measure(model: torch.nn.Module, size: int, repeats: int, device: str) -> dict:
    channels = sum(model.data_preprocessor.modality_channels)
    inputs = torch.rand(1, channels, size, size, device=device)
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         pad_shape=(size, size), batch_input_shape=(size, size),
                                         scale_factor=(1.0, 1.0)))
    model.predict(inputs, [sample.clone()])  # warm-up
    cuda = device.startswith('cuda')
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict(inputs, [sample.clone()])
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    # peak memory is only measured on CUDA (CPU allocations bypass any per-model counter)
    peak: Optional[float] = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return dict(params=sum(p.numel() for p in model.parameters()) / 1e6,
                latency=sorted(times)[len(times) // 2], peak_mib=peak)


def main() -> None:
    args = parse_args()
    init_default_scope('mmdet')
    rows = []
    for config in args.configs:
        model = build(config, args.device)
        rows.append((config, measure(model, args.size, args.repeats, args.device)))
        print(f'{config}: {rows[-1][1]}', flush=True)
    base = rows[0][1]
    print(f'\n{args.size}x{args.size} input, batch 1, device {args.device}, median of '
          f'{args.repeats} forward passes')
    print('| config | params (M) | latency (s) | latency ratio | peak memory (MiB) | memory ratio |')
    print('|---|---|---|---|---|---|')
    for config, r in rows:
        memory = ('- | -' if r['peak_mib'] is None else
                  f'{r["peak_mib"]:.0f} | {r["peak_mib"] / base["peak_mib"]:.2f}')
        print(f'| {config.split("/")[-1][:-3]} | {r["params"]:.1f} | {r["latency"]:.2f} | '
              f'{r["latency"] / base["latency"]:.2f} | {memory} |')


if __name__ == '__main__':
    main()
