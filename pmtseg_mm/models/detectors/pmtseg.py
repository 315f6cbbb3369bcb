"""PMTSeg detector: TMAA + TMSF + PSH trained with L = α·L_TMAA + β·L_CON + L_PSH (eq. 16)."""
from typing import Dict, List, Tuple

from mmdet.models.detectors import MaskFormer
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from pmtseg_mm.models.dense_heads.psh_head import TASKS

#: Data-sample field filled from each fusion-head result key.
RESULT_FIELDS = dict(
    sem_results='pred_sem_seg', ins_results='pred_instances', pan_results='pred_panoptic_seg')


@MODELS.register_module()
class PMTSeg(MaskFormer):
    """Prompt-driven multimodal Transformer for task-adapted RS segmentation (sec. III).

    ``backbone`` (DualBackbone) yields one multi-level feature tuple per modality; ``tmaa_loss``
    (TMAALoss, eq. 2-6) aligns them during training; ``neck`` (TMSFNeck, eq. 7-10) fuses them
    into ``(F_T^{1/4}, [F_T^{1/32}, F_T^{1/16}, F_T^{1/8}])``; ``panoptic_head`` (PSHHead)
    decodes them with a task prompt; ``panoptic_fusion_head`` (MultiTaskFusionHead)
    post-processes each task.

    Ablation parts (sec. IV-E) plug into the same slots: ``SumFusionNeck`` (w/o TMSF, Table IV),
    ``SeparateTaskHeads`` (Table V), ``PSHHead(prompt_mode='none')`` (w/o PSH: one pass,
    post-processed into all tasks), and ``DualBackbone`` with one channel group (one modality,
    Table VIII, or early fusion), for which TMAALoss gives 0 and the necks pass it through.

    Args:
        tmaa_loss (dict, optional): TMAALoss config (α is its ``loss_weight``). None disables
            L_TMAA (Table IV ablations).
        test_cfg (dict): Fusion-head test config (:class:`MultiTaskFusionHead`, including
            ``lowres_postprocess``) plus ``tasks`` - the tasks predicted in one ``predict``
            call, each with its own prompt, decoded together in one head call. Defaults to all
            three.
        Other args: as :class:`mmdet.models.MaskFormer`.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType = None,
                 panoptic_head: OptConfigType = None,
                 panoptic_fusion_head: OptConfigType = None,
                 tmaa_loss: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            panoptic_head=panoptic_head,
            panoptic_fusion_head=panoptic_fusion_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.tmaa_loss = None if tmaa_loss is None else MODELS.build(tmaa_loss)
        tasks = tuple((test_cfg or {}).get('tasks', TASKS))
        if not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
            raise ValueError(f'PMTSeg: `test_cfg.tasks` must be distinct names from {TASKS}, '
                             f'got {tasks!r}.')
        self.test_tasks = tasks

    def extract_feat(self, batch_inputs: Tensor) -> Tuple:
        """Backbone (per-modality features) followed by the neck (multi-scale F_T)."""
        x = self.backbone(batch_inputs)
        return self.neck(x) if self.with_neck else x

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """``loss_tmaa`` (α·L_TMAA) on the backbone features, then the PSH losses
        (L_PSH terms of every decoder layer and β·L_CON as ``loss_con``) - eq. 16."""
        modality_feats = self.backbone(batch_inputs)
        losses = {}
        if self.tmaa_loss is not None:
            losses['loss_tmaa'] = self.tmaa_loss(modality_feats)
        x = self.neck(modality_feats) if self.with_neck else modality_feats
        losses.update(self.panoptic_head.loss(x, batch_data_samples))
        return losses

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Backbone and neck once, then one head call with the prompts of all tasks of
        ``test_cfg.tasks`` along the batch (``forward_tasks``), and each task's
        post-processing of its own prompt's outputs; fills ``pred_sem_seg``,
        ``pred_instances`` and ``pred_panoptic_seg`` (as requested) of the same data samples.

        A head without task conditioning (``prompt_mode='none'``) decodes once, post-processed
        into all tasks.
        """
        x = self.extract_feat(batch_inputs)
        prompts, task_groups = self._task_prompts()
        cls_preds, mask_preds = self.panoptic_head.forward_tasks(x, batch_data_samples, prompts)
        results_list: List[dict] = [dict() for _ in batch_data_samples]
        for t, tasks in enumerate(task_groups):
            task_results = self.panoptic_fusion_head.predict(
                cls_preds[-1][:, t], mask_preds[-1][:, t], batch_data_samples,
                rescale=rescale, tasks=tasks)
            for merged, result in zip(results_list, task_results):
                merged.update(result)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _task_prompts(self) -> Tuple[Tuple[str, ...], List[Tuple[str, ...]]]:
        """The prompts of one ``predict`` call and the tasks post-processed from each: one
        prompt per task, or a single pass for all tasks when the head is not task-conditioned.
        """
        if self.panoptic_head.task_conditioned:
            return self.test_tasks, [(task, ) for task in self.test_tasks]
        return self.test_tasks[:1], [self.test_tasks]

    def add_pred_to_datasample(self, data_samples: SampleList,
                               results_list: List[dict]) -> SampleList:
        """Store ``sem_results`` / ``ins_results`` / ``pan_results`` as ``pred_sem_seg`` /
        ``pred_instances`` / ``pred_panoptic_seg``."""
        for data_sample, results in zip(data_samples, results_list):
            for key, value in results.items():
                setattr(data_sample, RESULT_FIELDS[key], value)
        return data_samples

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: SampleList) -> Tuple[List[Tensor], List[Tensor]]:
        """Tensor mode: the network work of one ``predict`` call - class logits
        (B, T, N, num_classes + 1) and mask logits (B, T, N, H/4, W/4) per decoder layer for the
        T prompts of ``test_cfg.tasks`` (T = 1 for a head without task conditioning)."""
        x = self.extract_feat(batch_inputs)
        return self.panoptic_head.forward_tasks(x, batch_data_samples, self._task_prompts()[0])
