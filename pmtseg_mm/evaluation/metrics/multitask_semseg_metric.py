"""Semantic metrics (mIoU, mAcc, OA) of a multi-task model, per class as in the paper's Fig. 10."""
from typing import Dict, Optional, Sequence

import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.evaluation.metrics import SemSegMetric
from mmdet.registry import METRICS


@METRICS.register_module()
class MultiTaskSemSegMetric(SemSegMetric):
    """mmdet :class:`SemSegMetric` under the prefix ``semantic``, reporting ``mIoU``, ``mAcc``
    and ``OA`` (overall pixel accuracy, mmdet's ``aAcc``) and logging a per-class IoU/Acc table.

    A sample without ``pred_sem_seg`` but with ``pred_panoptic_seg`` (a stock Mask2Former
    baseline) is scored on the semantic map of its panoptic prediction: class =
    ``pan_id % INSTANCE_OFFSET``; void pixels (class ``num_classes``) count as misses, never as
    a class. Ground-truth pixels equal to 255 are ignored.
    """
    default_prefix: Optional[str] = 'semantic'

    def __init__(self, iou_metrics: Sequence[str] = ('mIoU', ), **kwargs) -> None:
        super().__init__(iou_metrics=list(iou_metrics), **kwargs)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        num_classes = len(self.dataset_meta['classes'])
        samples = []
        for sample in data_samples:
            if 'pred_sem_seg' not in sample:
                if 'pred_panoptic_seg' not in sample:
                    raise ValueError(
                        f'{type(self).__name__}: sample {sample.get("img_path")} has neither '
                        '`pred_sem_seg` nor `pred_panoptic_seg` to score')
                labels = sample['pred_panoptic_seg']['sem_seg'] % INSTANCE_OFFSET
                labels = torch.where(labels >= num_classes, torch.full_like(labels, 255), labels)
                sample = dict(sample, pred_sem_seg=dict(sem_seg=labels))
            samples.append(sample)
        super().process(data_batch, samples)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        metrics = super().compute_metrics(results)
        if 'aAcc' in metrics:
            metrics['OA'] = metrics.pop('aAcc')
        return metrics
