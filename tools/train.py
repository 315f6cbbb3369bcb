"""Train a detector with the mmengine Runner (mmdet-style CLI).

Usage: python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
"""
import argparse
import os
import os.path as osp

import torch
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import pmtseg_mm  # noqa: F401  (registers components, checkpoint safe globals)
from pmtseg_mm.engine import add_reliability_hooks, setup_cpu_distributed
from pmtseg_mm.utils.checkpoint import find_resume_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a pmtseg-mm model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision (fp16 on GPU, bf16 autocast on CPU)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in work_dir if no path')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value (e.g. train_cfg.max_iters=20)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.amp and not torch.cuda.is_available():  # AmpOptimWrapper needs a GPU
        cfg.optim_wrapper.type = 'CPUBF16OptimWrapper'
    elif args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume = True
        # the latest complete checkpoint, also when a kill cut the `last_checkpoint` pointer
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    # stop on a non-finite loss before the update; random state in checkpoints (exact resume)
    add_reliability_hooks(cfg)
    setup_cpu_distributed(cfg, args.launcher)  # gloo when no GPU (mmengine assumes CUDA)
    runner = Runner.from_cfg(cfg)
    runner.train()


if __name__ == '__main__':
    main()
