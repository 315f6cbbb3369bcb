"""Nodata pixels, packed by the test pipeline as ``nodata_mask``, left out of PQ and AP.

``LoadMultiModalImages`` marks the pixels where a modality with a ``nodata`` value has none;
``VoidNodata`` voids the semantic target there (so the semantic metric skips them) and keeps the
mask, which the test pipeline packs into the data sample (``meta_keys`` ``'nodata_mask'``). PQ
and AP score ground truth read from the annotation files, so the panoptic and instance metrics
void those pixels in the files' ground truth and in the prediction with the helpers here.
"""
from typing import Optional

import numpy as np
import pycocotools.mask as mask_util


def nodata_mask(data_sample: dict, metric: str) -> Optional[np.ndarray]:
    """The sample's ``nodata_mask`` as a bool array of ``ori_shape``, None if it has no nodata.

    Raises:
        ValueError: the mask's shape is not the sample's ``ori_shape``.
    """
    mask = data_sample.get('nodata_mask')
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(data_sample['ori_shape'][:2]):
        raise ValueError(
            f'{metric}: nodata_mask of {data_sample.get("img_path")} is {mask.shape} but the '
            f'sample is {tuple(data_sample["ori_shape"][:2])} (ori_shape); the test pipeline must '
            'load the annotations (and run VoidNodata) at the original size, after any Resize')
    return mask if mask.any() else None


def to_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a bool mask, ``counts`` as str (JSON-ready)."""
    encoded = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded['counts'] = encoded['counts'].decode()
    return encoded


def decode_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """Bool mask of a COCO ``segmentation`` (polygons, RLE or uncompressed RLE)."""
    if isinstance(segmentation, list):  # polygons
        rle = mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation['counts'], list):  # uncompressed RLE
        rle = mask_util.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_util.decode(rle).astype(bool)


def trim_annotation(ann: dict, key: str, nodata: np.ndarray) -> Optional[dict]:
    """A copy of a COCO-style annotation without its nodata pixels, None when none is left.

    Args:
        ann (dict): the annotation; its mask is ``ann[key]``, its box ``ann['bbox']`` (xywh).
        key (str): ``'segmentation'`` (COCO JSON) or ``'mask'`` (mmdet ``instances``).
        nodata (np.ndarray): bool (H, W) nodata pixels of the image.
    """
    mask = decode_segmentation(ann[key], *nodata.shape) & ~nodata
    if not mask.any():
        return None
    rle = to_rle(mask)
    x, y, w, h = mask_util.toBbox(rle).tolist()
    trimmed = dict(ann, area=float(mask.sum()))
    trimmed[key] = rle
    trimmed['bbox'] = [x, y, w, h] if key == 'segmentation' else [x, y, x + w, y + h]
    return trimmed
