"""Semantic-only multimodal data for mmseg, and the adapter from the common COCO-panoptic layout."""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS
from panopticapi.utils import rgb2id

from ..structures import check_modality_folders

IGNORE_INDEX = 255


@DATASETS.register_module()
class MultiModalSegDataset(BaseSegDataset):
    """mmseg semantic dataset (``img_dir``/``ann_dir``) with a folder per extra modality.

    Samples are listed from ``data_prefix['img_path']`` as in :class:`BaseSegDataset`; every
    modality file shares the image's relative stem:
    ``<data_root>/<modalities[name]>/<stem><modality_suffixes[name]>``. Each data info gets
    ``modality_paths`` (ordered like ``modalities``) for ``LoadMultiModalImages``. Works for
    mmseg-style trees (``img_dir/train`` + ``ann_dir/train`` + ``depth_dir/train``) and for the
    common layout of this package after :func:`panoptic_to_semantic`.

    Args:
        modalities (dict[str, str]): Modality name -> folder relative to ``data_root``, in
            channel order, e.g. ``dict(optical='optical/train', depth='depth/train')``.
        modality_suffixes (dict[str, str], optional): Modality name -> file suffix; default
            ``img_suffix``.
        metainfo (dict): Must give ``classes`` (label index order of the annotation PNGs).
        *args, **kwargs: :class:`BaseSegDataset` arguments (``data_prefix``, ``img_suffix``,
            ``seg_map_suffix``, ``pipeline`` ...).
    """

    def __init__(self,
                 *args,
                 modalities: Dict[str, str],
                 modality_suffixes: Optional[Dict[str, str]] = None,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        modalities, modality_suffixes = check_modality_folders(
            modalities, modality_suffixes, 'MultiModalSegDataset')
        if not (metainfo or {}).get('classes'):
            raise ValueError('MultiModalSegDataset: pass the dataset classes as '
                             '`metainfo=dict(classes=(...))`, in the label order of the annotation '
                             'PNGs (panoptic_to_semantic returns them)')
        self.modalities, self.modality_suffixes = modalities, modality_suffixes
        super().__init__(*args, metainfo=metainfo, **kwargs)

    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.data_root is not None:
            self.modalities = {name: osp.join(self.data_root, prefix)
                               for name, prefix in self.modalities.items()}

    def load_data_list(self) -> List[dict]:
        data_list = super().load_data_list()
        img_dir = self.data_prefix.get('img_path', '')
        for info in data_list:
            rel = osp.relpath(info['img_path'], img_dir)
            stem = rel[:-len(self.img_suffix)] if rel.endswith(self.img_suffix) else \
                osp.splitext(rel)[0]
            info['modality_paths'] = {
                name: osp.join(prefix, stem + self.modality_suffixes.get(name, self.img_suffix))
                for name, prefix in self.modalities.items()
            }
        return data_list


def panoptic_to_semantic(data_root: str, split: str,
                         out_dir: Optional[str] = None) -> Tuple[str, ...]:
    """Write one semantic label PNG per image from the COCO-panoptic annotation of ``split``.

    Reads ``<data_root>/annotations/panoptic_<split>.json`` and its PNG folder and writes
    ``<out_dir or data_root/annotations/semantic_<split>>/<stem>.png`` (uint8): pixel value =
    index of the segment's category in the JSON ``categories`` list (things first in this
    package's layout), 255 = void. Returns the class names in that order, for
    ``metainfo=dict(classes=...)`` of :class:`MultiModalSegDataset`.
    """
    ann_path = osp.join(data_root, 'annotations', f'panoptic_{split}.json')
    if not osp.isfile(ann_path):
        raise FileNotFoundError(f'panoptic_to_semantic: annotation file not found: {ann_path}')
    with open(ann_path) as f:
        coco = json.load(f)
    for key in ('categories', 'annotations'):
        if key not in coco:
            raise ValueError(f'panoptic_to_semantic: {ann_path} has no `{key}` list')
    categories: Sequence[dict] = coco['categories']
    if len(categories) >= IGNORE_INDEX:
        raise ValueError(f'panoptic_to_semantic: {len(categories)} categories in {ann_path}; uint8 '
                         f'labels hold at most {IGNORE_INDEX} (255 is void)')
    label_of = {cat['id']: i for i, cat in enumerate(categories)}
    png_dir = osp.join(data_root, 'annotations', f'panoptic_{split}')
    out_dir = out_dir or osp.join(data_root, 'annotations', f'semantic_{split}')
    os.makedirs(out_dir, exist_ok=True)
    for ann in coco['annotations']:
        png_path = osp.join(png_dir, ann['file_name'])
        if not osp.isfile(png_path):
            raise FileNotFoundError(f'panoptic_to_semantic: panoptic PNG not found: {png_path} '
                                    f'(annotation of image {ann.get("image_id")} in {ann_path})')
        ids = rgb2id(mmcv.imread(png_path, channel_order='rgb'))
        semantic = np.full(ids.shape, IGNORE_INDEX, dtype=np.uint8)
        for seg in ann['segments_info']:
            if seg['category_id'] not in label_of:
                raise ValueError(f'panoptic_to_semantic: segment {seg["id"]} of {png_path} has '
                                 f'category_id {seg["category_id"]}, not in the categories of '
                                 f'{ann_path}')
            semantic[ids == seg['id']] = label_of[seg['category_id']]
        stem = osp.splitext(ann['file_name'])[0]
        mmcv.imwrite(semantic, osp.join(out_dir, stem + '.png'))
    return tuple(cat['name'] for cat in categories)
