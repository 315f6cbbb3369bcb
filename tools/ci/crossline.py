"""One tiny checkpoint tested on both OpenMMLab lines (.ci/run; docs/install.md).

On the default line, ``prepare`` generates a small synthetic dataset, trains the tiny PMTSeg for a
few iterations and writes the checkpoint and its nine test metrics
(``DIR/metrics_<line>.json``); the fork line's smoke set (tools/ci/test_smoke.py) tests the same
checkpoint on the same data and compares.

    python tools/ci/crossline.py prepare DIR [--iters 200]
    python tools/ci/crossline.py test DIR          # metrics of DIR's checkpoint on this line
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, List

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs', 'pmtseg', 'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py')
METRIC_KEYS = ('panoptic/PQ', 'panoptic/SQ', 'panoptic/RQ', 'instance/segm_mAP',
               'instance/segm_mAP_50', 'instance/segm_mAP_75', 'semantic/mIoU', 'semantic/mAcc',
               'semantic/OA')


def data_options(data_root: str, panoptic: bool = True) -> Dict[str, object]:
    """Config options pointing a synthetic-data config at ``data_root`` (no workers, batch 2);
    ``panoptic=False`` for mmseg configs (no annotation files in their evaluator)."""
    root = data_root.rstrip('/') + '/'
    opts: Dict[str, object] = {'train_dataloader.batch_size': 2}
    for split in ('train', 'val', 'test'):
        opts.update({f'{split}_dataloader.dataset.data_root': root,
                     f'{split}_dataloader.num_workers': 0,
                     f'{split}_dataloader.persistent_workers': False})
    for loop in ('val', 'test') if panoptic else ():
        opts.update({f'{loop}_evaluator.0.ann_file': f'{root}annotations/panoptic_val.json',
                     f'{loop}_evaluator.0.seg_prefix': f'{root}annotations/panoptic_val/',
                     f'{loop}_evaluator.1.ann_file': f'{root}annotations/instances_val.json'})
    return opts


def cli_options(opts: Dict[str, object]) -> List[str]:
    """``--cfg-options`` arguments of :func:`data_options`."""
    return [f'{key}={value}' for key, value in opts.items()]


def runner_config(config: str, data_root: str, work_dir: str, iters: int):
    """``config`` on ``data_root``, training ``iters`` iterations without validation, saving the
    last checkpoint only."""
    from mmengine.config import Config

    from pmtseg_mm.utils import drop_pretrained
    cfg = Config.fromfile(config)
    panoptic = cfg.get('default_scope', 'mmdet') != 'mmseg'
    cfg.merge_from_dict(dict(data_options(data_root, panoptic), **{
        'train_cfg.max_iters': iters, 'train_cfg.val_interval': iters + 1,
        'default_hooks.checkpoint.interval': iters, 'default_hooks.logger.interval': 10,
        'randomness': dict(seed=0)}), allow_list_keys=True)
    cfg.work_dir = work_dir
    drop_pretrained(cfg.model)
    return cfg


def checkpoint_metrics(data_root: str, ckpt: str, work_dir: str) -> Dict[str, float]:
    """The nine metrics of the tiny PMTSeg checkpoint ``ckpt`` on ``data_root``'s val split."""
    from mmengine.runner import Runner
    cfg = runner_config(TINY, data_root, work_dir, 1)
    cfg.load_from = ckpt
    metrics = Runner.from_cfg(cfg).test()
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise RuntimeError(f'the test reported no {missing} (got {sorted(metrics)})')
    return {k: float(metrics[k]) for k in METRIC_KEYS}


def prepare(folder: str, iters: int) -> Dict[str, float]:
    """Data, a checkpoint of ``iters`` iterations and its metrics on this line, in ``folder``."""
    import pmtseg_mm
    from mmengine.runner import Runner

    from pmtseg_mm.datasets.synthetic import generate_synthetic
    from pmtseg_mm.segmentation import panoptic_to_semantic
    data_root = osp.join(folder, 'data')
    generate_synthetic(data_root, num_train=16, num_val=6, size=64, aux='depth', seed=0,
                       progress=False)
    for split in ('train', 'val'):  # the semantic PNGs of the mmseg configs
        panoptic_to_semantic(data_root, split)
    Runner.from_cfg(runner_config(TINY, data_root, osp.join(folder, 'train'), iters)).train()
    ckpt = osp.join(folder, 'train', f'iter_{iters}.pth')
    os.replace(ckpt, osp.join(folder, 'tiny.pth'))
    return write_metrics(folder, pmtseg_mm.STACK)


def write_metrics(folder: str, line: str) -> Dict[str, float]:
    metrics = checkpoint_metrics(osp.join(folder, 'data'), osp.join(folder, 'tiny.pth'),
                           osp.join(folder, f'test_{line}'))
    with open(osp.join(folder, f'metrics_{line}.json'), 'w') as f:
        json.dump(metrics, f, indent=1)
    return metrics


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('command', choices=('prepare', 'test'))
    parser.add_argument('folder')
    parser.add_argument('--iters', type=int, default=200, help='training iterations (prepare)')
    args = parser.parse_args(argv)
    os.makedirs(args.folder, exist_ok=True)
    if args.command == 'prepare':
        metrics = prepare(args.folder, args.iters)
    else:
        import pmtseg_mm
        metrics = write_metrics(args.folder, pmtseg_mm.STACK)
    json.dump(metrics, sys.stdout, indent=1)
    print()


if __name__ == '__main__':
    main()
