"""Nodata pixels become void targets, so training ignores them and metrics skip them."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks


@TRANSFORMS.register_module()
class VoidNodata(BaseTransform):
    """Void the targets where ``results['nodata_mask']`` (set by ``LoadMultiModalImages`` for
    modalities with a ``nodata`` value) is True; a no-op for samples without it.

    Put it right after the annotations are loaded (before geometric transforms, which then move
    the void targets with the image). The semantic map gets ``ignore_index`` there, instance
    masks lose those pixels, and instances left without a pixel are dropped (with their boxes,
    labels and ignore flags); the boxes of the others are recomputed from their masks.

    A mask with a nodata pixel stays in ``results['nodata_mask']`` (at the loaded size; no
    transform moves it) for the panoptic and instance metrics, whose ground truth comes from the
    annotation files: the shipped test pipeline, which loads the annotations at the original
    size, packs it with ``meta_keys``. A mask without one is dropped.

    Args:
        ignore_index (int): Value of void pixels in ``gt_seg_map``. Defaults to 255.
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        mask = results.get('nodata_mask')
        if mask is None or not mask.any():
            results.pop('nodata_mask', None)
            return results
        if results.get('gt_seg_map') is not None:
            if results['gt_seg_map'].shape != mask.shape:
                raise ValueError(f'VoidNodata: the nodata mask is {mask.shape} but gt_seg_map is '
                                 f'{results["gt_seg_map"].shape}; put VoidNodata right after '
                                 'the annotations are loaded, before any resize')
            results['gt_seg_map'] = np.where(mask, self.ignore_index, results['gt_seg_map']
                                             ).astype(results['gt_seg_map'].dtype)
        masks = results.get('gt_masks')
        if isinstance(masks, BitmapMasks) and len(masks):
            kept = masks.masks * ~mask[None]
            keep = kept.reshape(len(kept), -1).any(1)
            results['gt_masks'] = BitmapMasks(kept[keep], masks.height, masks.width)
            for key in ('gt_bboxes_labels', 'gt_ignore_flags'):
                if results.get(key) is not None:
                    results[key] = results[key][keep]
            if results.get('gt_bboxes') is not None:
                boxes = results['gt_masks'].get_bboxes(dst_type='hbox')
                results['gt_bboxes'] = boxes if isinstance(results['gt_bboxes'],
                                                           HorizontalBoxes) else boxes.numpy()
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(ignore_index={self.ignore_index})'
