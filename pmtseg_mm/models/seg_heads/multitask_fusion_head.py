"""Post-processing of PSH outputs into semantic, instance and panoptic results (sec. III-D-3).

mmdet's ``MaskFormerFusionHead`` implements panoptic and instance inference; this subclass adds
semantic inference (MaskFormer's semantic inference: Σ_q p_q(c) · sigmoid(m_q), argmax over c)
and lets the caller choose the tasks per call, so PMTSeg post-processes each task-prompted head
run only for its own task.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import PixelData
from torch import Tensor

TASK_RESULT_KEYS = dict(semantic='sem_results', instance='ins_results', panoptic='pan_results')


@MODELS.register_module()
class MultiTaskFusionHead(MaskFormerFusionHead):
    """MaskFormer fusion head with semantic segmentation post-processing.

    ``test_cfg`` keys as :class:`mmdet.models.MaskFormerFusionHead` (``panoptic_on``,
    ``instance_on``, ``semantic_on`` - now allowed -, ``object_mask_thr``, ``iou_thr``,
    ``max_per_image``, ``filter_low_score``).
    """

    def semantic_postprocess(self, mask_cls: Tensor, mask_pred: Tensor) -> PixelData:
        """Semantic segmentation inference.

        Args:
            mask_cls (Tensor): Class logits (num_queries, num_classes + 1), last = no object.
            mask_pred (Tensor): Mask logits (num_queries, H, W).

        Returns:
            PixelData: ``sem_seg`` (1, H, W) long class ids = argmax_c Σ_q softmax(mask_cls)_qc ·
            sigmoid(mask_pred)_q.
        """
        cls_prob = F.softmax(mask_cls, dim=-1)[:, :-1]
        seg = torch.einsum('qc,qhw->chw', cls_prob, mask_pred.sigmoid())
        return PixelData(sem_seg=seg.argmax(dim=0, keepdim=True))

    def predict(self,
                mask_cls_results: Tensor,
                mask_pred_results: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = False,
                tasks: Optional[Sequence[str]] = None,
                **kwargs) -> List[dict]:
        """Crop the padding, optionally rescale to ``ori_shape``, and post-process.

        Args:
            mask_cls_results (Tensor): (B, num_queries, num_classes + 1).
            mask_pred_results (Tensor): (B, num_queries, H, W) at the padded input size.
            batch_data_samples (list[DetDataSample]): Samples with ``img_shape``/``ori_shape``.
            rescale (bool): Return results at ``ori_shape``. Defaults to False.
            tasks (Sequence[str], optional): Subset of 'semantic', 'instance', 'panoptic' to
                produce; None = the ``*_on`` flags of ``test_cfg`` (panoptic on by default).

        Returns:
            list[dict]: per image, ``sem_results`` (PixelData), ``ins_results``
            (InstanceData) and/or ``pan_results`` (PixelData) for the requested tasks.
        """
        if tasks is None:
            tasks = [task for task, default in (('semantic', False), ('instance', False),
                                                ('panoptic', True))
                     if self.test_cfg.get(f'{task}_on', default)]
        unknown = [t for t in tasks if t not in TASK_RESULT_KEYS]
        if unknown:
            raise ValueError(f'tasks must be among {tuple(TASK_RESULT_KEYS)}, got {unknown}.')
        postprocess = dict(
            semantic=self.semantic_postprocess,
            instance=self.instance_postprocess,
            panoptic=self.panoptic_postprocess)

        results = []
        for mask_cls, mask_pred, data_sample in zip(mask_cls_results, mask_pred_results,
                                                    batch_data_samples):
            img_h, img_w = data_sample.metainfo['img_shape'][:2]
            mask_pred = mask_pred[:, :img_h, :img_w]
            if rescale:
                ori_h, ori_w = data_sample.metainfo['ori_shape'][:2]
                mask_pred = F.interpolate(
                    mask_pred[:, None], size=(ori_h, ori_w), mode='bilinear',
                    align_corners=False)[:, 0]
            results.append({
                TASK_RESULT_KEYS[task]: postprocess[task](mask_cls, mask_pred)
                for task in tasks
            })
        return results
