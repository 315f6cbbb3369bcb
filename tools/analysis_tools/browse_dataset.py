"""Browse a multimodal dataset after the pipeline: every modality next to the ground truth.

    python tools/analysis_tools/browse_dataset.py CONFIG --output-dir work_dirs/browse \
        [--split train|val|test] [--num 20] [--cfg-options k=v ...]

Like mmdet's browse_dataset for RGB, but each saved picture shows all modalities of the
stacked image (after augmentation: flips, scale jitter, crops and ModalityDropout act on all of
them together) | GT semantic | GT instances | GT panoptic. A modality blanked by ModalityDropout
is titled "<name> (dropped)".
"""
import argparse
import os
import os.path as osp
from typing import List, Optional, Sequence

import mmcv
import numpy as np
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import DATASETS
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

import pmtseg_mm  # noqa: F401  (registers components)
from pmtseg_mm.structures import ModalityLayout
from pmtseg_mm.visualization.multimodal_visualizer import (_titled, colorize_labels,
                                                           colorize_panoptic, overlay_instances,
                                                           render_modality)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='config file')
    parser.add_argument('--output-dir', required=True, help='folder for the pictures')
    parser.add_argument('--split', default='train', choices=['train', 'val', 'test'],
                        help='<split>_dataloader.dataset to browse (default: train)')
    parser.add_argument('--num', type=int, default=20, help='number of samples (default: 20)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def gt_panoptic(sem: np.ndarray, masks: np.ndarray, labels: np.ndarray,
                num_classes: int) -> np.ndarray:
    """mmdet panoptic encoding from GT: stuff from the semantic map, each thing instance
    ``label + (i + 1) * INSTANCE_OFFSET``; ignored pixels (255) are void."""
    pan = np.where(sem == 255, num_classes, sem).astype(np.int64)
    for i, (mask, label) in enumerate(zip(masks, labels), start=1):
        pan[mask] = int(label) + i * INSTANCE_OFFSET
    return pan


def draw_sample(item: dict, metainfo: dict) -> np.ndarray:
    """One RGB row for a pipeline output (``inputs`` tensor + packed ``data_samples``)."""
    sample = item['data_samples']
    img = item['inputs'].permute(1, 2, 0).cpu().numpy()
    names = sample.metainfo.get('modalities') or ('image', )
    channels = sample.metainfo.get('modality_channels') or (img.shape[2], )
    if sum(channels) != img.shape[2]:
        raise ValueError(f'the pipeline output has {img.shape[2]} channels but `modality_channels`'
                         f' = {tuple(channels)}; pack `modalities` and `modality_channels` in '
                         "PackDetInputs' meta_keys")
    dropped = set(sample.metainfo.get('missing_modalities') or ())
    layout = ModalityLayout(names, channels)
    panels = []
    for name, array in layout.split(img).items():
        colour = name == layout.colour
        if colour and array.dtype != np.uint8 and array.min() >= 0 and array.max() <= 255:
            array = array.astype(np.uint8)  # optical in 0..255: true colours
        panels.append((render_modality(array, bgr=colour),
                       f'{name} (dropped)' if name in dropped else name))
    palette, num_classes = metainfo['palette'], len(metainfo['classes'])
    base = panels[0][0]
    h, w = base.shape[:2]
    sem = np.full((h, w), 255, np.uint8)
    if 'gt_sem_seg' in sample:
        sem = sample.gt_sem_seg.sem_seg[0].cpu().numpy().astype(np.uint8)[:h, :w]
        panels.append((colorize_labels(sem, palette), 'GT semantic'))
    masks, labels = np.zeros((0, h, w), bool), np.zeros(0, np.int64)
    if 'gt_instances' in sample and 'masks' in sample.gt_instances:
        inst = sample.gt_instances
        masks = inst.masks.to_ndarray().astype(bool)[:, :h, :w] if hasattr(
            inst.masks, 'to_ndarray') else inst.masks.cpu().numpy().astype(bool)[:, :h, :w]
        labels = inst.labels.cpu().numpy()
        panels.append((overlay_instances(base, masks, labels, palette), 'GT instances'))
    if 'gt_sem_seg' in sample:
        panels.append((colorize_panoptic(gt_panoptic(sem, masks, labels, num_classes),
                                         num_classes, palette), 'GT panoptic'))
    gap = np.full((h + 18, 4, 3), 255, np.uint8)
    row: List[np.ndarray] = []
    for picture, title in panels:
        row += [_titled(picture, title), gap]
    return np.concatenate(row[:-1], axis=1)


def main(argv: Optional[Sequence[str]] = None) -> List[str]:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    key = f'{args.split}_dataloader'
    if key not in cfg:
        raise KeyError(f'the config {args.config} has no `{key}`')
    dataset = DATASETS.build(cfg[key].dataset)
    metainfo = dataset.metainfo
    if len(metainfo.get('palette') or ()) < len(metainfo['classes']):
        rng = np.random.RandomState(0)
        metainfo = dict(metainfo, palette=[tuple(rng.randint(0, 256, 3).tolist())
                                           for _ in metainfo['classes']])
    os.makedirs(args.output_dir, exist_ok=True)
    count = min(args.num, len(dataset))
    progress = ProgressBar(count)
    written = []
    for index in range(count):
        item = dataset[index]
        picture = draw_sample(item, metainfo)
        stem = osp.splitext(osp.basename(item['data_samples'].metainfo.get(
            'img_path', f'{index}')))[0]
        path = osp.join(args.output_dir, f'{index:04d}_{stem}.png')
        mmcv.imwrite(picture[..., ::-1], path)
        written.append(path)
        progress.update()
    return written


if __name__ == '__main__':
    main()
