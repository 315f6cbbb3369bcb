"""Check a whole dataset before training: every per-file check, one table of problems.

Usage::

    python tools/misc/check_dataset.py CONFIG [--split train val] [--workers N]
        [--min-valid 0.5] [--cfg-options k=v ...]

For each split it builds ``<split>_dataloader.dataset`` from the config and runs, on every
sample, the checks that training would only hit when it reaches that sample: readable files,
sizes across modalities, band counts, dtype / value range, non-finite pixels, GeoTIFF
georeferencing (LoadMultiModalImages options of the pipeline), the fraction of valid pixels
(with per-modality ``nodata``; ``--min-valid``), panoptic PNG ids against
``segments_info``, unknown categories, and the instances JSON (``instances_<split>.json`` next
to the panoptic JSON) against the panoptic things. Prints ``file | problem`` rows and exits with
code 1 if there is any problem, 0 otherwise. ``check_on_startup=True`` in a dataset config runs
the same checks when training starts.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

import pmtseg_mm  # noqa: F401  (registers components)
from pmtseg_mm.datasets import MultiModalCocoPanopticDataset
from pmtseg_mm.datasets.multimodal_coco_panoptic import check_instances_json, format_problems

Problem = Tuple[str, str]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Check every file of a dataset before training')
    parser.add_argument('config', help='training config file')
    parser.add_argument('--split', nargs='+', default=['train', 'val'],
                        help='dataloaders to check: <split>_dataloader (default: train val)')
    parser.add_argument('--workers', type=int, default=0, help='worker processes (0 = in process)')
    parser.add_argument('--min-valid', type=float, default=0.5,
                        help='report samples with a smaller fraction of valid pixels (pixels that '
                        'are `nodata` in no modality; default 0.5)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    args = parser.parse_args(argv)
    if not 0.0 <= args.min_valid <= 1.0:
        parser.error(f'--min-valid is a fraction of the pixels, 0 to 1; got {args.min_valid}')
    return args


def _leaf_datasets(dataset) -> list:
    """The datasets inside Concat/Repeat/ClassBalanced wrappers."""
    if hasattr(dataset, 'datasets'):
        return [leaf for d in dataset.datasets for leaf in _leaf_datasets(d)]
    if hasattr(dataset, 'dataset'):
        return _leaf_datasets(dataset.dataset)
    return [dataset]


def _disable_startup_check(node) -> None:
    if isinstance(node, dict):
        if 'check_on_startup' in node:
            node['check_on_startup'] = False
        for value in node.values():
            _disable_startup_check(value)
    elif isinstance(node, list):
        for value in node:
            _disable_startup_check(value)


def check_split(cfg: Config, split: str, workers: int,
                min_valid: float = 0.5) -> Tuple[int, List[Problem]]:
    """Check one split; returns (number of samples, problems)."""
    from mmdet.registry import DATASETS
    key = f'{split}_dataloader'
    if not isinstance(cfg.get(key), dict) or 'dataset' not in cfg[key]:
        raise KeyError(f'--split {split}: the config has no `{key}.dataset`')
    dataset_cfg = cfg[key]['dataset'].copy()
    _disable_startup_check(dataset_cfg)
    try:
        dataset = DATASETS.build(dataset_cfg)
    except Exception as err:  # noqa: BLE001  (unknown categories, missing JSON ...)
        files = getattr(err, 'files', ()) or (str(dataset_cfg.get('ann_file', key)), )
        return 0, [(', '.join(files), f'{type(err).__name__}: {err}')]
    problems: List[Problem] = []
    count = 0
    for leaf in _leaf_datasets(dataset):
        if not isinstance(leaf, MultiModalCocoPanopticDataset):
            problems.append((key, f'{type(leaf).__name__} is not a MultiModalCocoPanopticDataset: '
                             'not checked'))
            continue
        count += len(leaf)
        problems += leaf.check_all(workers=workers, progress=True, min_valid=min_valid)
        instances = osp.join(osp.dirname(leaf.ann_file),
                             osp.basename(leaf.ann_file).replace('panoptic_', 'instances_', 1))
        if instances != leaf.ann_file and osp.isfile(instances):
            problems += check_instances_json(leaf.ann_file, instances)
    return count, problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    total = 0
    for split in args.split:
        count, problems = check_split(cfg, split, args.workers, args.min_valid)
        print(f'{split}: {count} samples checked, {len(problems)} problem(s)')
        if problems:
            print(format_problems(problems))
        total += len(problems)
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
