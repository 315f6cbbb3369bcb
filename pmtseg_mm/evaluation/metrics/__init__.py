from .multitask_instance_metric import MultiTaskCocoMetric
from .multitask_panoptic_metric import MultiTaskCocoPanopticMetric
from .multitask_semseg_metric import MultiTaskSemSegMetric

__all__ = ['MultiTaskCocoMetric', 'MultiTaskCocoPanopticMetric', 'MultiTaskSemSegMetric']
