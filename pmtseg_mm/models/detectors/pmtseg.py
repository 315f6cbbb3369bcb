"""PMTSeg detector: TMAA + TMSF + PSH trained with L = α·L_TMAA + β·L_CON + L_PSH (eq. 16)."""
from typing import Dict, List, Optional, Sequence, Tuple

from mmdet.models.detectors import MaskFormer
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from torch import Tensor

from pmtseg_mm.structures import RESULT_FIELDS, check_tasks


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
    Table VIII, or the modalities stacked) and ``fusion=None``, for which TMAALoss gives 0 and
    the necks fuse nothing.

    Args:
        tmaa_loss (dict, optional): TMAALoss config (α is its ``loss_weight``). None disables
            L_TMAA (Table IV ablations).
        test_cfg (dict): Fusion-head test config (:class:`MultiTaskFusionHead`, including
            ``lowres_postprocess``) plus ``tasks`` - the tasks a ``predict`` call gives unless
            it names its own, each with its own prompt, decoded together in one head call.
            Defaults to all three.
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
        self.test_tasks = check_tasks((test_cfg or {}).get('tasks'), 'PMTSeg: `test_cfg.tasks`')

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
                rescale: bool = True,
                tasks: Optional[Sequence[str]] = None) -> SampleList:
        """Backbone and neck once, then one head call with the prompts of all ``tasks`` (default
        ``test_cfg.tasks``) along the batch (``forward_tasks``), and each task's
        post-processing of its own prompt's outputs; fills ``pred_sem_seg``,
        ``pred_instances`` and ``pred_panoptic_seg`` (as requested) of the same data samples.

        A head without task conditioning (``prompt_mode='none'``) decodes once, post-processed
        into all tasks.
        """
        prompts, task_groups = self._task_prompts(tasks)
        cls_preds, mask_preds = self.panoptic_head.forward_tasks(
            self.extract_feat(batch_inputs), batch_data_samples, prompts)
        results_list: List[dict] = [dict() for _ in batch_data_samples]
        for t, group in enumerate(task_groups):
            task_results = self.panoptic_fusion_head.predict(
                cls_preds[-1][:, t], mask_preds[-1][:, t], batch_data_samples,
                rescale=rescale, tasks=group)
            for merged, result in zip(results_list, task_results):
                merged.update(result)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def predict_window_scores(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                              tasks: Sequence[str] = ('semantic', 'instance')) -> List[dict]:
        """For callers that blend overlapping windows (whole-scene inference): per image,
        ``sem_scores`` (C, H, W) class scores and ``ins_results`` (InstanceData) at its
        ``img_shape`` (:meth:`MultiTaskFusionHead.window_scores`), from one backbone/neck pass
        and one head call with the prompts of ``tasks`` ('semantic' and/or 'instance')."""
        prompts, task_groups = self._task_prompts(tasks)
        cls_preds, mask_preds = self.panoptic_head.forward_tasks(
            self.extract_feat(batch_inputs), batch_data_samples, prompts)
        results: List[dict] = [dict() for _ in batch_data_samples]
        for t, group in enumerate(task_groups):
            for i, sample in enumerate(batch_data_samples):
                results[i].update(self.panoptic_fusion_head.window_scores(
                    cls_preds[-1][i, t], mask_preds[-1][i, t], sample.metainfo, group))
        return results

    def _task_prompts(self, tasks: Optional[Sequence[str]] = None
                      ) -> Tuple[Tuple[str, ...], List[Tuple[str, ...]]]:
        """The prompts of one call for ``tasks`` (default ``test_cfg.tasks``) and the tasks
        post-processed from each: one prompt per task, or a single pass for all tasks when the
        head is not task-conditioned."""
        tasks = check_tasks(tasks, 'tasks', default=self.test_tasks)
        if self.panoptic_head.task_conditioned:
            return tasks, [(task, ) for task in tasks]
        return tasks[:1], [tasks]

    def add_pred_to_datasample(self, data_samples: SampleList,
                               results_list: List[dict]) -> SampleList:
        """Store ``sem_results`` / ``ins_results`` / ``pan_results`` as ``pred_sem_seg`` /
        ``pred_instances`` / ``pred_panoptic_seg``."""
        for data_sample, results in zip(data_samples, results_list):
            for key, value in results.items():
                setattr(data_sample, RESULT_FIELDS[key], value)
        return data_samples

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                 tasks: Optional[Sequence[str]] = None) -> Tuple[List[Tensor], List[Tensor]]:
        """Tensor mode: the network work of one ``predict`` call - class logits
        (B, T, N, num_classes + 1) and mask logits (B, T, N, H/4, W/4) per decoder layer for the
        T prompts of ``tasks`` (default ``test_cfg.tasks``; T = 1 for a head without task
        conditioning)."""
        x = self.extract_feat(batch_inputs)
        return self.panoptic_head.forward_tasks(x, batch_data_samples,
                                                self._task_prompts(tasks)[0])
