"""Instance metrics (AP, AP50, AP75) of a multi-task model."""
from typing import Dict, Optional, Sequence, Union

from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS
from mmengine.logging import MMLogger

AP_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


@METRICS.register_module()
class MultiTaskCocoMetric(CocoMetric):
    """mmdet :class:`CocoMetric` for mask AP under the prefix ``instance``.

    Differences: AP values are percentages (like PQ and mIoU, and the paper's tables); an empty
    prediction set (mmdet logs an error and returns no keys) scores 0 for every AP item instead
    of dropping them; the per-class AP table is on by default. The instance JSON lists the thing
    categories, which come first in the dataset classes, so predicted labels map to them.
    """
    default_prefix: Optional[str] = 'instance'

    def __init__(self,
                 metric: Union[str, Sequence[str]] = 'segm',
                 classwise: bool = True,
                 **kwargs) -> None:
        super().__init__(metric=metric, classwise=classwise, **kwargs)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        eval_results = super().compute_metrics(results)
        if self.format_only:
            return eval_results
        out: Dict[str, float] = {}
        for metric in self.metrics:
            items = self.metric_items or AP_ITEMS
            missing = [item for item in items if f'{metric}_{item}' not in eval_results]
            if missing:
                MMLogger.get_current_instance().warning(
                    f'{type(self).__name__}: no {metric} predictions to score; '
                    f'{metric} AP items {missing} reported as 0')
            for item in items:
                value = eval_results.get(f'{metric}_{item}', 0.0)
                out[f'{metric}_{item}'] = value if value < 0 else round(value * 100, 1)
        return out
