"""Learning benchmark on the embedded synthetic dataset: PMTSeg vs Mask2Former-EF vs optical-only.

One command generates the dataset, trains every model with the same small CPU budget (the tiny
configs), evaluates all three tasks and repeats over seeds; it prints one table of mean ± std.

    python tools/analysis_tools/benchmark_synthetic.py --work-dir work_dirs/benchmark \
        --iters 300 --seeds 0 1 2
"""
import argparse
import json
import os.path as osp
import time
from typing import Dict, List

import numpy as np
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import pmtseg_mm  # noqa: F401
from pmtseg_mm.datasets.synthetic import generate_synthetic

MODELS = {
    'PMTSeg': 'configs/pmtseg/pmtseg_r18-tiny_1xb4-300it_synthetic-depth-128x128.py',
    'Mask2Former-EF': 'configs/baselines/mask2former-ef_r18-tiny_1xb4-300it_synthetic-depth-128x128.py',
    'Mask2Former (optical)':
    'configs/baselines/mask2former-optical_r18-tiny_1xb4-300it_synthetic-depth-128x128.py',
}
COLUMNS = {
    'PQ': 'panoptic/PQ', 'SQ': 'panoptic/SQ', 'RQ': 'panoptic/RQ', 'AP': 'instance/segm_mAP',
    'AP50': 'instance/segm_mAP_50', 'AP75': 'instance/segm_mAP_75', 'mIoU': 'semantic/mIoU',
    'mAcc': 'semantic/mAcc', 'OA': 'semantic/OA'
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/benchmark_synthetic')
    parser.add_argument('--data-root', default='data/synthetic_depth_benchmark')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--iters', type=int, default=300)
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--models', nargs='+', choices=list(MODELS), default=list(MODELS))
    return parser.parse_args()


def build_cfg(config: str, args: argparse.Namespace, seed: int, work_dir: str) -> Config:
    cfg = Config.fromfile(config)
    root = args.data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
        cfg[loader].num_workers = 2
    cfg.train_dataloader.batch_size = args.batch_size
    for evaluator in cfg.test_evaluator:
        if 'ann_file' in evaluator:
            evaluator.ann_file = root + 'annotations/' + osp.basename(evaluator.ann_file)
        if 'seg_prefix' in evaluator:
            evaluator.seg_prefix = root + 'annotations/panoptic_val/'
    cfg.train_cfg.max_iters = args.iters
    cfg.train_cfg.val_interval = args.iters + 1  # evaluate once, after training
    cfg.param_scheduler = dict(type='MultiStepLR', begin=0, end=args.iters, by_epoch=False,
                               milestones=[int(args.iters * 0.89)], gamma=0.1)
    cfg.default_hooks.checkpoint.interval = args.iters
    cfg.default_hooks.logger.interval = 50
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = work_dir
    return cfg


def format_table(results: Dict[str, List[Dict[str, float]]]) -> str:
    lines = ['| model | ' + ' | '.join(COLUMNS) + ' |', '|---' * (len(COLUMNS) + 1) + '|']
    for name, runs in results.items():
        cells = []
        for col in COLUMNS:
            values = np.array([r[col] for r in runs], dtype=float)
            cells.append(f'{values.mean():.1f} ± {values.std():.1f}')
        lines.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main() -> None:
    args = parse_args()
    init_default_scope('mmdet')
    start = time.time()
    if not osp.exists(osp.join(args.data_root, 'annotations', 'panoptic_val.json')):
        generate_synthetic(args.data_root, num_train=args.num_train, num_val=args.num_val,
                           size=128, aux='depth', seed=args.data_seed, workers=2)
    results: Dict[str, List[Dict[str, float]]] = {name: [] for name in args.models}
    for seed in args.seeds:
        for name in args.models:
            work_dir = osp.join(args.work_dir, name.replace(' ', '_').strip('()'), f'seed{seed}')
            runner = Runner.from_cfg(build_cfg(MODELS[name], args, seed, work_dir))
            runner.train()
            metrics = runner.test()
            row = {col: float(metrics[key]) for col, key in COLUMNS.items()}
            results[name].append(row)
            print(f'[benchmark] {name} seed {seed}: ' +
                  ', '.join(f'{k} {v:.1f}' for k, v in row.items()), flush=True)
    table = format_table(results)
    wall = time.time() - start
    summary = (f'Synthetic optical+depth benchmark: {args.num_train} train / {args.num_val} val '
               f'images of 128x128, {args.iters} iterations at batch {args.batch_size}, seeds '
               f'{args.seeds}; mean ± std over seeds; wall time {wall / 60:.1f} min\n\n{table}')
    print(summary)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(args=vars(args), results=results, wall_s=wall), f, indent=1)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(summary + '\n')


if __name__ == '__main__':
    main()
