"""Semantic segmentation scores (mIoU, mAcc, OA) of a multi-task model."""
import os.path as osp
from typing import Dict, Optional, Sequence

import mmcv
import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.evaluation.metrics import SemSegMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

from .skipped_samples import report_skipped


def panoptic_to_semantic(pred_panoptic_seg: dict, num_classes: int) -> torch.Tensor:
    """Semantic map of an mmdet panoptic prediction (``label + instance_id * INSTANCE_OFFSET``).

    Class = ``pan_id % INSTANCE_OFFSET``; VOID (``num_classes`` or the prediction's
    ``ignore_index``) becomes ``num_classes``, a class no ground-truth pixel has, so void pixels
    count as misses (they lower IoU, Acc and OA of the ground-truth class) and as no prediction.
    """
    labels = pred_panoptic_seg['sem_seg'] % INSTANCE_OFFSET
    ignore_index = pred_panoptic_seg.get('ignore_index', num_classes)
    void = (labels == num_classes) | (labels == ignore_index)
    return labels.masked_fill(void, num_classes)


@METRICS.register_module()
class MultiTaskSemSegMetric(SemSegMetric):
    """mmdet :class:`SemSegMetric` reporting ``mIoU``, ``mAcc`` and ``OA`` (percent).

    ``OA`` is the overall pixel accuracy, correct / labelled pixels over the whole split (mmdet
    3.3's ``aAcc`` is not: it averages per-class accuracies, i.e. equals ``mAcc``); ground-truth
    pixels equal to the ignore index (255, or ``pred_sem_seg.ignore_index``) are left out. A
    per-class IoU/Acc table is logged, and the IoU of each class is returned as ``<class>_IoU``
    (``nan`` for a class absent from ground truth and prediction).

    A sample without ``pred_sem_seg`` but with ``pred_panoptic_seg`` is scored on the semantic
    map derived from the panoptic one (:func:`panoptic_to_semantic`: void counts as a miss), so
    stock Mask2Former baselines, which predict panoptic only, get an mIoU too. Samples with
    neither are skipped with a warning; ``ValueError`` when no sample can be scored.

    With ``output_dir`` the predicted class maps are written as ``<image stem>.png`` (uint8
    class ids; mmdet's own writer passes a PIL image to ``mmcv.imwrite`` and fails).

    Args:
        output_dir, format_only, backend_args, collect_device, prefix: as in mmdet's
            :class:`SemSegMetric`.
    """
    default_prefix: Optional[str] = 'semantic'

    def __init__(self,
                 output_dir: Optional[str] = None,
                 format_only: bool = False,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(
            iou_metrics=['mIoU'],
            collect_device=collect_device,
            output_dir=output_dir,
            format_only=format_only,
            backend_args=backend_args,
            prefix=prefix)
        self.png_dir, self.output_dir = self.output_dir, None  # written by this class
        self._num_skipped = 0

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score each sample (dicts from ``to_dict()``) on ``pred_sem_seg`` or the panoptic map."""
        num_classes = len(self.dataset_meta['classes'])
        usable = []
        for data_sample in data_samples:
            if 'pred_sem_seg' not in data_sample:
                if 'pred_panoptic_seg' not in data_sample:
                    self._num_skipped += 1
                    continue
                sem_seg = panoptic_to_semantic(data_sample['pred_panoptic_seg'], num_classes)
                data_sample = dict(data_sample, pred_sem_seg=dict(sem_seg=sem_seg))
            if not self.format_only:
                if 'gt_sem_seg' not in data_sample:
                    raise ValueError(
                        f'{type(self).__name__}: data sample {data_sample.get("img_path")} has '
                        'no `gt_sem_seg`; load it with LoadPanopticAnnotations(with_seg=True) '
                        'in the test pipeline')
                pred_shape = tuple(data_sample['pred_sem_seg']['sem_seg'].shape[-2:])
                gt_shape = tuple(data_sample['gt_sem_seg']['sem_seg'].shape[-2:])
                if pred_shape != gt_shape:
                    raise ValueError(
                        f'{type(self).__name__}: prediction {pred_shape} and gt_sem_seg '
                        f'{gt_shape} of {data_sample.get("img_path")} differ in size; predictions '
                        'are at ori_shape, so load annotations after Resize in the test pipeline')
            usable.append(data_sample)
        if usable and not self.format_only:
            super().process(data_batch, usable)
        if self.png_dir is not None:
            for data_sample in usable:
                stem = osp.splitext(osp.basename(data_sample['img_path']))[0]
                labels = data_sample['pred_sem_seg']['sem_seg'].squeeze().cpu().numpy()
                mmcv.imwrite(labels.astype(np.uint8), osp.join(self.png_dir, stem + '.png'))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """``mIoU``, ``mAcc``, ``OA`` and ``<class>_IoU`` in percent (2 decimals, as mmdet)."""
        if self.format_only:
            self._num_skipped = 0
            MMLogger.get_current_instance().info(f'semantic PNGs are saved to {self.png_dir}')
            return {}
        report_skipped(self, len(results), '`pred_sem_seg` or `pred_panoptic_seg`',
                       ['semantic', 'panoptic'])
        metrics = super().compute_metrics(results)
        # mmdet's aAcc averages the per-class accuracies (= mAcc); OA pools all pixels
        intersect = sum(result['area_intersect'] for result in results).sum()
        labelled = sum(result['area_label'] for result in results).sum()
        union = sum(result['area_union'] for result in results)
        per_class = {
            f'{name}_IoU': round(100 * float(i / u), 2) if u > 0 else float('nan')
            for name, i, u in zip(self.dataset_meta['classes'],
                                  sum(result['area_intersect'] for result in results), union)
        }
        # mmseg rounds to 2 decimals in the array's dtype: float32 on numpy 2 would carry noise
        return dict(mIoU=round(float(metrics['mIoU']), 2), mAcc=round(float(metrics['mAcc']), 2),
                    OA=round(100 * float(intersect / labelled), 2), **per_class)
