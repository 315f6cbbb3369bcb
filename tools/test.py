"""Test a checkpoint: all metrics of the config's evaluators in one loop (mmdet-style CLI).

Usage: python tools/test.py CONFIG CHECKPOINT [--tasks semantic instance panoptic]
           [--show-dir DIR [--show-num N]] [--dump-dir DIR] [--out results.pkl]
           [--cfg-options k=v ...]
"""
import argparse
import os
import os.path as osp

from mmdet.evaluation import DumpDetResults
from mmdet.registry import METRICS
from mmdet.utils import setup_cache_size_limit_of_dynamo
from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import pmtseg_mm  # noqa: F401  (registers components, checkpoint safe globals)
from pmtseg_mm.engine import setup_cpu_distributed
from pmtseg_mm.structures import TASKS, fusion_switches


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a pmtseg-mm model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--tasks', nargs='+', choices=TASKS, default=None,
                        help='segmentation tasks to predict and evaluate (default: all the '
                        'config provides)')
    parser.add_argument('--out', help='dump raw predictions to this pickle file')
    parser.add_argument('--dump-dir', help='also write predictions in standard formats: COCO '
                        'panoptic JSON + PNGs (panoptic.panoptic.json), COCO instance results '
                        '(instance.segm.json, RLE) and semantic PNGs (semantic/)')
    parser.add_argument('--show-dir', help='save prediction pictures (modalities | semantic | '
                        'instance | panoptic) to this directory')
    parser.add_argument('--show-num', type=int, default=4, help='number of pictures to save')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def metric_task(evaluator: dict) -> str:
    """The task an evaluator scores: its ``prefix`` or its class's default prefix."""
    metric = evaluator['type']  # a class in Python-style configs, a registry name in classic ones
    metric = metric if isinstance(metric, type) else METRICS.get(metric)
    return evaluator.get('prefix') or getattr(metric, 'default_prefix', None)


def select_tasks(cfg: Config, tasks) -> None:
    """Restrict the model's predictions and the evaluators to ``tasks``."""
    test_cfg = cfg.model.setdefault('test_cfg', {})
    if 'tasks' in test_cfg:  # PMTSeg: one head pass per task prompt
        test_cfg['tasks'] = tuple(tasks)
    else:  # stock Mask2Former: its post-processing switches (semantic only where it has it)
        test_cfg.update(fusion_switches(tasks, bool(test_cfg.get('semantic_on', False))))
    for key in ('val_evaluator', 'test_evaluator'):
        evaluators = cfg.get(key)
        if isinstance(evaluators, (list, tuple)):
            kept = [e for e in evaluators if metric_task(e) not in TASKS or metric_task(e) in tasks]
            if not kept:
                raise ValueError(f'--tasks {tasks}: no evaluator of `{key}` is left')
            cfg[key] = kept


def dump_predictions(cfg: Config, dump_dir: str) -> None:
    """Make the test evaluators also write their predictions in standard formats."""
    evaluators = cfg.test_evaluator
    for evaluator in evaluators if isinstance(evaluators, (list, tuple)) else [evaluators]:
        task = metric_task(evaluator)
        if task == 'semantic':
            evaluator['output_dir'] = osp.join(dump_dir, 'semantic')
        elif task in ('panoptic', 'instance'):
            evaluator['outfile_prefix'] = osp.join(dump_dir, task)


def main() -> None:
    args = parse_args()
    setup_cache_size_limit_of_dynamo()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.tasks:
        select_tasks(cfg, args.tasks)
    if args.dump_dir:
        os.makedirs(args.dump_dir, exist_ok=True)
        dump_predictions(cfg, args.dump_dir)
    if args.show_dir:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + [
            dict(type='MultiModalVisualizationHook', out_dir=args.show_dir,
                 num_samples=args.show_num)
        ]
    setup_cpu_distributed(cfg, args.launcher)  # gloo when no GPU (mmengine assumes CUDA)
    runner = Runner.from_cfg(cfg)
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError(f'--out must be a .pkl or .pickle file, got {args.out}')
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    runner.test()


if __name__ == '__main__':
    main()
