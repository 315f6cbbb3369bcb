# All nine metrics in one val/test loop: PQ/SQ/RQ, AP/AP50/AP75, mIoU/mAcc/OA (percent), with the
# package's fixed metrics. Twin of configs/_base_/datasets/multitask_evaluator.py (see there for
# the metric keys); the dataset bases fill the annotation paths.
from pmtseg_mm.evaluation.metrics import (MultiTaskCocoMetric, MultiTaskCocoPanopticMetric,
                                          MultiTaskSemSegMetric)

val_evaluator = [
    dict(type=MultiTaskCocoPanopticMetric, classwise=True, prefix='panoptic'),
    dict(type=MultiTaskCocoMetric, metric='segm', classwise=True, prefix='instance'),
    dict(type=MultiTaskSemSegMetric, prefix='semantic'),
]
test_evaluator = val_evaluator
