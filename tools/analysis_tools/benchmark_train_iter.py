"""Seconds per training iteration through mmengine's Runner (data loading, hooks, optimizer and
all), for configs side by side, with the ratio against the first one measured in the same run.

Each config trains ``--iters`` iterations on its own training data in a fresh process (so one
model's threads and memory do not touch another's); the first ``--skip`` iterations are warm-up.
Take the numbers on a quiet machine: two torch jobs on 2 cores slow each other down many times.

    python tools/analysis_tools/benchmark_train_iter.py \
        configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py \
        configs/baselines/mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py \
        --iters 50 --threads 2
    # the same config with the optimizer of main before the grouped/fused change
    python tools/analysis_tools/benchmark_train_iter.py A.py A.py --names grouped per-param \
        --cfg-options-of 1 "optim_wrapper.constructor='DefaultOptimWrapperConstructor'" \
        "optim_wrapper.optimizer.fused=None"
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def measure(config: str, options: Sequence[str], iters: int, skip: int, threads: int,
            data_root: Optional[str]) -> dict:
    """Train ``config`` for ``iters`` iterations in this process; per-iteration wall times."""
    import torch
    torch.set_num_threads(threads)
    from mmengine.config import Config
    from mmengine.hooks import Hook
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import pmtseg_mm  # noqa: F401
    init_default_scope('mmdet')
    cfg = Config.fromfile(config)
    for option in options:
        key, value = option.split('=', 1)
        cfg.merge_from_dict({key: eval(value, {}, {})})  # literal values of the command line
    if data_root is not None:
        cfg.train_dataloader.dataset.data_root = data_root.rstrip('/') + '/'
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.param_scheduler = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10**9, save_last=False)
    cfg.work_dir = tempfile.mkdtemp(prefix='benchmark_train_iter_')
    cfg.log_level = 'WARNING'
    stamps: List[float] = []

    class StampHook(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
            stamps.append(time.perf_counter())

    runner = Runner.from_cfg(cfg)
    runner.register_hook(StampHook())
    runner.train()
    times = [b - a for a, b in zip(stamps, stamps[1:])][skip:]
    return dict(median_s=statistics.median(times), mean_s=statistics.mean(times), n=len(times))


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--names', nargs='+', help='row names (default: config stems)')
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--skip', type=int, default=10, help='warm-up iterations not counted')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--data-root', default=None)
    parser.add_argument('--cfg-options', nargs='*', default=[], metavar='KEY=VALUE',
                        help='overrides for every config (Python literals)')
    parser.add_argument('--cfg-options-of', nargs='+', action='append', default=[],
                        metavar=('INDEX', 'KEY=VALUE'),
                        help='overrides for the config at INDEX (0-based) only')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:  # child process: one measurement, JSON on the last line
        spec = json.loads(args.worker)
        print(json.dumps(measure(**spec)))
        return
    names = args.names or [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(names) != len(args.configs):
        parser.error('--names must give one name per config')
    if args.iters <= args.skip + 1:
        parser.error('--iters must exceed --skip + 1')
    per_config = {i: [] for i in range(len(args.configs))}
    for index, *options in args.cfg_options_of:
        if not index.isdigit() or int(index) not in per_config:
            parser.error(f'--cfg-options-of: {index!r} is not the index of a config')
        per_config[int(index)] += options
    rows = []
    for i, (name, config) in enumerate(zip(names, args.configs)):
        if not osp.isfile(config):
            parser.error(f'config file {config!r} does not exist')
        spec = dict(config=config, options=args.cfg_options + per_config[i], iters=args.iters,
                    skip=args.skip, threads=args.threads, data_root=args.data_root)
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        out = subprocess.run([sys.executable, __file__, 'x', '--worker', json.dumps(spec)],
                             capture_output=True, text=True, env=env, cwd=os.getcwd())
        if out.returncode:
            raise SystemExit(f'benchmark_train_iter: {config} failed:\n{out.stderr[-3000:]}')
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append((name, row))
        print(f'[benchmark_train_iter] {name}: {row["median_s"]:.3f} s/iter (median)', flush=True)
    base = rows[0][1]['median_s']
    print(f'\n| config | s/iter (median) | s/iter (mean) | ratio to {rows[0][0]} |')
    print('|---|---|---|---|')
    for name, row in rows:
        print(f'| {name} | {row["median_s"]:.3f} | {row["mean_s"]:.3f} | '
              f'{row["median_s"] / base:.2f} |')
    print(f'\n{args.iters} iterations, the first {args.skip} not counted, {args.threads} '
          'thread(s), one fresh process per config.')


if __name__ == '__main__':
    main()
