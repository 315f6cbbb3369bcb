# All nine metrics in one val/test loop with the package's fixed metrics (PQ/SQ/RQ, AP/AP50/AP75,
# mIoU/mAcc/OA); dataset configs fill the annotation paths.
from pmtseg_mm.evaluation.metrics import (MultiTaskCocoMetric, MultiTaskCocoPanopticMetric,
                                          MultiTaskSemSegMetric)

panoptic_metric = dict(type=MultiTaskCocoPanopticMetric, classwise=True, prefix='panoptic')
instance_metric = dict(type=MultiTaskCocoMetric, metric='segm', classwise=True, prefix='instance')
semantic_metric = dict(type=MultiTaskSemSegMetric, prefix='semantic')
