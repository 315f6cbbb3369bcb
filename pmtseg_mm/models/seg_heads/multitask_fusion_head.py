"""Post-processing of PSH outputs into semantic, instance and panoptic results (sec. III-D-3).

mmdet's ``MaskFormerFusionHead`` implements panoptic and instance inference; this subclass adds
semantic inference (MaskFormer's semantic inference: Σ_q p_q(c) · sigmoid(m_q), argmax over c),
lets the caller choose the tasks per call, so PMTSeg post-processes each task-prompted head
run only for its own task, and post-processes at the mask-feature resolution: only the C class
maps (semantic) or the surviving queries (instance, panoptic) are upsampled.
"""
from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.structures import PixelData
from torch import Tensor

from pmtseg_mm.structures import TASK_RESULT_KEYS, check_tasks


@MODELS.register_module()
class MultiTaskFusionHead(MaskFormerFusionHead):
    """MaskFormer fusion head with semantic segmentation post-processing.

    ``test_cfg`` keys as :class:`mmdet.models.MaskFormerFusionHead` (``panoptic_on``,
    ``instance_on``, ``semantic_on`` - now allowed -, ``object_mask_thr``, ``iou_thr``,
    ``max_per_image``, ``filter_low_score``) plus ``lowres_postprocess`` (bool, default True):
    select before upsampling - semantic inference sums the query masks into the C class maps at
    the mask resolution, upsamples those and recomputes only the pixels between cells of
    different classes at full resolution (see :meth:`semantic_postprocess`); instance and
    panoptic inference upsample only the queries that survive mmdet's selection (top
    ``max_per_image`` scores; label not "no object" and score > ``object_mask_thr``), which
    gives mmdet's results exactly (instances possibly in another order: mmdet's top-k is
    unsorted). False upsamples all N query masks first (mmdet's order).
    """

    @staticmethod
    def semantic_scores(mask_cls: Tensor, mask_pred: Tensor) -> Tensor:
        """(C, h, w) class scores Σ_q softmax(mask_cls)_qc · sigmoid(m_q) (MaskFormer's semantic
        inference; its argmax over C is the semantic segmentation)."""
        return torch.einsum('qc,qhw->chw', F.softmax(mask_cls, dim=-1)[:, :-1], mask_pred.sigmoid())

    def semantic_postprocess(self, mask_cls: Tensor, mask_pred: Tensor,
                             img_meta: Optional[dict] = None, rescale: bool = False) -> PixelData:
        """Semantic segmentation inference: argmax_c Σ_q softmax(mask_cls)_qc · sigmoid(m_q).

        Without ``img_meta`` the masks are used at their resolution. With ``img_meta`` (masks at
        the mask-feature resolution, low-resolution inference), the sum runs at that resolution
        and only its C class maps go through :meth:`resize_masks`. Sigmoid and bilinear
        upsampling do not commute, so near class borders this would move the border by up to
        half a mask cell; the pixels whose bilinear support touches a cell of another
        low-resolution class are therefore recomputed from the upsampled query
        logits (``m_q`` interpolated as :meth:`resize_masks` does, at those pixels only).

        Args:
            mask_cls (Tensor): Class logits (num_queries, num_classes + 1), last = no object.
            mask_pred (Tensor): Mask logits (num_queries, h, w).
            img_meta (dict, optional): ``batch_input_shape``, ``img_shape``, ``ori_shape``.
            rescale (bool): With ``img_meta``: output at ``ori_shape`` (else ``img_shape``).

        Returns:
            PixelData: ``sem_seg`` (1, H, W) long class ids.
        """
        seg = self.semantic_scores(mask_cls, mask_pred)
        if img_meta is None:  # (max: the argmax, with a faster CPU kernel)
            return PixelData(sem_seg=seg.max(dim=0, keepdim=True).indices)
        sem = self.resize_masks(seg, img_meta, rescale).max(dim=0).indices
        # pixels interpolating cells of different low-resolution classes
        low = F.one_hot(seg.max(dim=0).indices, seg.shape[0]).permute(2, 0, 1).to(seg.dtype)
        ys, xs = (self.resize_masks(low, img_meta, rescale).amax(dim=0) <
                  1 - 1e-3).nonzero(as_tuple=True)
        # their upsampled query logits: rows interpolated, then each pixel's <= 4 columns
        rows = self.resize_masks(mask_pred, img_meta, rescale, axes=(0, )).flatten(1)
        weights, cols = self._column_weights(mask_pred, img_meta, rescale)
        logits = sum(weights[xs, t] * rows.index_select(1, ys * mask_pred.shape[-1] + cols[xs, t])
                     for t in range(cols.shape[1]))  # (num_queries, K)
        cls_prob = F.softmax(mask_cls, dim=-1)[:, :-1]
        sem[ys, xs] = (cls_prob.t() @ logits.sigmoid()).max(dim=0).indices
        return PixelData(sem_seg=sem[None])

    @staticmethod
    def _column_weights(mask_pred: Tensor, img_meta: dict,
                        rescale: bool) -> Tuple[Tensor, Tensor]:
        """:meth:`resize_masks` along the columns as weights and indices (out_width, k) of the
        k <= 4 mask columns that each output column interpolates."""
        width = mask_pred.shape[-1]
        signal = torch.eye(width, dtype=mask_pred.dtype, device=mask_pred.device)[:, None]
        pad = img_meta['batch_input_shape'][1]
        if width != pad:
            signal = F.interpolate(signal, size=pad, mode='linear', align_corners=False)
        signal = signal[..., :img_meta['img_shape'][1]]
        if rescale:
            signal = F.interpolate(signal, size=img_meta['ori_shape'][1], mode='linear',
                                   align_corners=False)
        return signal[:, 0].t().topk(min(4, width), dim=1)

    def surviving_queries(self, mask_cls: Tensor, task: str) -> Tensor:
        """Indices (ascending) of the queries whose masks mmdet's post-processing of ``task``
        can use: panoptic - label not "no object" and score > ``object_mask_thr``; instance -
        the queries of the top ``max_per_image`` (query, class) scores."""
        probs = F.softmax(mask_cls, dim=-1)
        if task == 'panoptic':
            scores, labels = probs.max(-1)
            keep = labels.ne(self.num_classes) & (
                scores > self.test_cfg.get('object_mask_thr', 0.8))
            return keep.nonzero()[:, 0]
        top = probs[:, :-1].flatten().topk(
            self.test_cfg.get('max_per_image', 100), sorted=False).indices
        return torch.unique(top // self.num_classes)

    def resize_masks(self, masks: Tensor, img_meta: dict, rescale: bool,
                     axes: Sequence[int] = (0, 1)) -> Tensor:
        """(n, h, w) logits at any resolution of the padded input -> bilinear to
        ``batch_input_shape``, crop to ``img_shape``, bilinear to ``ori_shape`` if ``rescale``
        (mmdet's sequence, so each map gets exactly the values it got there; a resize to the
        same size, the identity, is skipped); only along ``axes`` (0: rows, 1: columns), the
        other axis keeps its size."""

        def size(key: str) -> Tuple[int, int]:
            return tuple(img_meta[key][a] if a in axes else masks.shape[-2 + a] for a in (0, 1))

        if tuple(masks.shape[-2:]) != size('batch_input_shape'):
            masks = F.interpolate(masks[:, None], size=size('batch_input_shape'),
                                  mode='bilinear', align_corners=False)[:, 0]
        img_h, img_w = size('img_shape')
        masks = masks[:, :img_h, :img_w]
        if rescale and tuple(masks.shape[-2:]) != size('ori_shape'):
            masks = F.interpolate(masks[:, None], size=size('ori_shape'), mode='bilinear',
                                  align_corners=False)[:, 0]
        return masks

    def predict(self,
                mask_cls_results: Tensor,
                mask_pred_results: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = False,
                tasks: Optional[Sequence[str]] = None,
                **kwargs) -> List[dict]:
        """Upsample to the padded input size, crop the padding, optionally rescale to
        ``ori_shape``, and post-process (see ``lowres_postprocess`` for the order).

        Args:
            mask_cls_results (Tensor): (B, num_queries, num_classes + 1).
            mask_pred_results (Tensor): (B, num_queries, h, w) mask logits at the mask-feature
                resolution (the PSH output) or at the padded input size (mmdet's heads).
            batch_data_samples (list[DetDataSample]): Samples with ``batch_input_shape``,
                ``img_shape`` and ``ori_shape``.
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
        tasks = check_tasks(tasks)
        postprocess = dict(
            semantic=self.semantic_postprocess,
            instance=self.instance_postprocess,
            panoptic=self.panoptic_postprocess)
        lowres = self.test_cfg.get('lowres_postprocess', True)

        results = []
        for mask_cls, mask_pred, data_sample in zip(mask_cls_results, mask_pred_results,
                                                    batch_data_samples):
            resize = partial(self.resize_masks, img_meta=data_sample.metainfo, rescale=rescale)
            if not lowres:
                mask_pred = resize(mask_pred)
                result = {TASK_RESULT_KEYS[task]: postprocess[task](mask_cls, mask_pred)
                          for task in tasks}
            else:
                result = {}
                for task in tasks:
                    if task == 'semantic':
                        result[TASK_RESULT_KEYS[task]] = self.semantic_postprocess(
                            mask_cls, mask_pred, data_sample.metainfo, rescale)
                    else:
                        keep = self.surviving_queries(mask_cls, task)
                        result[TASK_RESULT_KEYS[task]] = postprocess[task](
                            mask_cls[keep], resize(mask_pred[keep]))
            results.append(result)
        return results

    def window_scores(self, mask_cls: Tensor, mask_pred: Tensor, img_meta: dict,
                      tasks: Sequence[str]) -> Dict[str, object]:
        """What callers that blend overlapping windows need of one image, at its ``img_shape``:
        ``sem_scores`` (C, H, W) :meth:`semantic_scores` of every query mask resized as
        :meth:`resize_masks` does (mmdet's full-resolution order), and ``ins_results`` - the
        instance post-processing of the queries that can survive its selection
        (:meth:`surviving_queries`; the same instances as resizing all of them).

        Args:
            mask_cls (Tensor): Class logits (num_queries, num_classes + 1).
            mask_pred (Tensor): Mask logits (num_queries, h, w) at any resolution of the input.
            img_meta (dict): ``batch_input_shape`` and ``img_shape``.
            tasks (Sequence[str]): 'semantic' and/or 'instance'.
        """
        tasks = check_tasks(tasks)
        if 'panoptic' in tasks:
            raise ValueError('window scores exist for semantic and instance only; a panoptic '
                             'result is made from the blended semantic scores and the instances')
        resize = partial(self.resize_masks, img_meta=img_meta, rescale=False)
        out: Dict[str, object] = {}
        if 'semantic' in tasks:
            out['sem_scores'] = self.semantic_scores(mask_cls, resize(mask_pred))
        if 'instance' in tasks:
            keep = self.surviving_queries(mask_cls, 'instance')
            out[TASK_RESULT_KEYS['instance']] = self.instance_postprocess(
                mask_cls[keep], resize(mask_pred[keep]))
        return out
