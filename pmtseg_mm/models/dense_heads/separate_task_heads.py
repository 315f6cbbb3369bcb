"""Separate task heads on a shared trunk: the "Separate" row of Table V (sec. IV-E-2)."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.model import BaseModule, ModuleDict
from torch import Tensor

from pmtseg_mm.structures import TASKS, check_tasks
from .psh_head import PSHHead


@MODELS.register_module()
class SeparateTaskHeads(BaseModule):
    """One Mask2Former head per task after the shared backbone, TMAA and TMSF (the traditional
    multitask design of Fig. 1(a), compared with the unified PSH in Table V).

    Each head is a :class:`PSHHead` without task conditioning (``prompt_mode='none'``: learned
    queries, no prompt, no L_CON) trained on its own task's targets
    (:func:`~pmtseg_mm.models.dense_heads.psh_head.build_task_targets`). Every head is trained
    on every image and the losses are summed (keys prefixed by the task, e.g.
    ``semantic.loss_cls``); at test time the detector runs the head of each requested task.

    Args:
        tasks (Sequence[str]): Tasks with a head, distinct names from ('semantic', 'instance',
            'panoptic'). Defaults to all three.
        train_cfg (dict, optional): Passed to every head (set by the detector).
        test_cfg (dict, optional): Passed to every head (set by the detector).
        init_cfg (dict, optional): Initialisation config of the wrapper.
        **head_kwargs: The :class:`PSHHead` arguments shared by all heads; ``prompt_mode`` must
            be 'none' and ``task_probs`` None (each head trains on its own task), so a config
            can turn the unified head into separate heads with
            ``panoptic_head=dict(type='SeparateTaskHeads', prompt_mode='none',
            task_probs=None)``.
    """

    def __init__(self,
                 tasks: Sequence[str] = TASKS,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = None,
                 **head_kwargs) -> None:
        super().__init__(init_cfg=init_cfg)
        tasks = check_tasks(tasks, 'SeparateTaskHeads: `tasks`')
        if head_kwargs.get('prompt_mode', 'psh') != 'none':
            raise ValueError("SeparateTaskHeads: the heads have no task conditioning; set "
                             "`prompt_mode='none'`, got "
                             f"{head_kwargs.get('prompt_mode', 'psh')!r}.")
        task_probs = head_kwargs.pop('task_probs', None)
        if task_probs is not None:
            raise ValueError('SeparateTaskHeads: each head trains on its own task; set '
                             f'`task_probs=None`, got {task_probs!r}.')
        head_kwargs.pop('type', None)
        self.tasks = tasks
        self.heads = ModuleDict({
            task: PSHHead(**head_kwargs, task_probs={task: 1.0}, train_cfg=train_cfg,
                          test_cfg=test_cfg)
            for task in tasks
        })
        first = self.heads[tasks[0]]
        self.num_things_classes = first.num_things_classes
        self.num_stuff_classes = first.num_stuff_classes
        self.num_classes = first.num_classes

    @property
    def task_conditioned(self) -> bool:
        """Predictions depend on the task (a different head per task)."""
        return True

    def _head(self, task: str) -> PSHHead:
        if task not in self.heads:
            raise ValueError(f'SeparateTaskHeads: no head for task {task!r}; heads: {self.tasks}.')
        return self.heads[task]

    def loss(self, x: Tuple, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Every head's L_PSH (eq. 15) on its own task's targets, keys ``{task}.{loss}``."""
        losses = {}
        for task, head in self.heads.items():
            losses.update({f'{task}.{k}': v for k, v in head.loss(x, batch_data_samples).items()})
        return losses

    def forward(self, x: Tuple, batch_data_samples: SampleList,
                tasks: Optional[Union[str, Sequence[str]]] = None):
        """Outputs of the head of ``tasks`` (one task for the batch; None = 'panoptic')."""
        task = tasks or 'panoptic'
        if not isinstance(task, str):
            if len(set(task)) != 1:
                raise ValueError('SeparateTaskHeads: one task per call, got '
                                 f'{list(task)}.')
            task = task[0]
        return self._head(task).forward(x, batch_data_samples)

    def forward_tasks(self, x: Tuple, batch_data_samples: SampleList,
                      tasks: Sequence[str]) -> Tuple[List[Tensor], List[Tensor]]:
        """:meth:`PSHHead.forward_tasks` for separate heads: the head of each task runs once;
        outputs stacked along dim 1 (B, T, ...) in the order of ``tasks``."""
        outs = [self._head(task).forward_tasks(x, batch_data_samples, [task]) for task in tasks]
        return ([torch.cat(layer, dim=1) for layer in zip(*(cls for cls, _ in outs))],
                [torch.cat(layer, dim=1) for layer in zip(*(mask for _, mask in outs))])

    def predict(self, x: Tuple, batch_data_samples: SampleList,
                task: str = 'panoptic') -> Tuple[Tensor, Tensor]:
        """Last-layer class and (upsampled) mask logits of the head of ``task``."""
        return self._head(task).predict(x, batch_data_samples, task)
