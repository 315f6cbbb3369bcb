"""What the multi-task metrics say about samples they could not score."""
from typing import Sequence

from mmengine.logging import MMLogger


def report_skipped(metric: object, num_scored: int, fields: str, tasks: Sequence[str]) -> None:
    """Reset ``metric._num_skipped``; raise when nothing was scored, else warn about the skipped.

    Args:
        metric: the metric (its class names the messages).
        num_scored (int): samples scored in this evaluation.
        fields (str): the prediction field(s) a sample needs, e.g. ```pred_instances```.
        tasks (Sequence[str]): the tasks that give them; the error says how to switch them on.
    """
    num_skipped, metric._num_skipped = metric._num_skipped, 0
    name = type(metric).__name__
    if not num_scored:
        raise ValueError(
            f'{name}: no data sample has {fields} ({num_skipped} skipped); let the model predict '
            f'the {" or ".join(tasks)} task (PMTSeg: {" or ".join(map(repr, tasks))} in '
            f'test_cfg.tasks; Mask2Former: test_cfg.{"/".join(t + "_on" for t in tasks)}=True) '
            'or drop this metric')
    if num_skipped:
        MMLogger.get_current_instance().warning(
            f'{name}: {num_skipped} data samples without {fields} were not scored')
