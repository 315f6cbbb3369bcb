"""The three segmentation tasks of PMTSeg (sec. III-D) and where their results go.

One place for the task names, the fusion-head result key and data-sample field of each task,
the check of a task selection, and the switches that select tasks in mmdet's stock
``MaskFormerFusionHead`` (the Mask2Former baselines), so no caller spells them again.
"""
from typing import Dict, Optional, Sequence, Tuple, Union

#: Task names, in the order of the prompts' embedding table (LV) and of ``task_probs``.
TASKS: Tuple[str, ...] = ('semantic', 'instance', 'panoptic')
#: Fusion-head result key of each task.
TASK_RESULT_KEYS: Dict[str, str] = dict(
    semantic='sem_results', instance='ins_results', panoptic='pan_results')
#: Data-sample field filled from each fusion-head result key.
RESULT_FIELDS: Dict[str, str] = dict(
    sem_results='pred_sem_seg', ins_results='pred_instances', pan_results='pred_panoptic_seg')


def check_tasks(tasks: Optional[Union[str, Sequence[str]]], owner: str = 'tasks',
                default: Sequence[str] = TASKS) -> Tuple[str, ...]:
    """``tasks`` as a tuple of distinct names from :data:`TASKS` (``default`` for None); a
    ``ValueError`` naming ``owner`` (the argument or config key) otherwise."""
    if tasks is None:
        tasks = default
    tasks = (tasks, ) if isinstance(tasks, str) else tuple(tasks)
    if not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
        raise ValueError(f'{owner} must be distinct names from {TASKS}, got {tasks!r}')
    return tasks


def fusion_switches(tasks: Sequence[str], semantic_supported: bool) -> Dict[str, bool]:
    """``test_cfg`` switches of mmdet's ``MaskFormerFusionHead`` that make a stock Mask2Former
    post-process exactly ``tasks`` (one head pass, every task from it). mmdet's own fusion head
    has no semantic inference (``semantic_supported=False`` keeps ``semantic_on`` off);
    :class:`MultiTaskFusionHead` has."""
    tasks = check_tasks(tasks)
    return dict(panoptic_on='panoptic' in tasks, instance_on='instance' in tasks,
                semantic_on=semantic_supported and 'semantic' in tasks)
