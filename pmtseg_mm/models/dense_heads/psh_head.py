"""Prompt-driven segmentation head (PSH) of PMTSeg (sec. III-D, eq. 11-15).

One Mask2Former decoder serves the semantic, instance and panoptic tasks. Its initial queries
Q_task are generated from the 1/4-scale task-common feature F_T^{1/4} and a task embedding I_task
encoded from the prompt "The task is {task}." (eq. 11). During training, label-level texts
"RS data with a {category}" give Q_label, aligned with Q_task by the contrastive loss L_CON
(eq. 12-14); the segmentation loss L_PSH (eq. 15) is Mask2Former's cls + BCE + dice loss.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.mask import BitmapMasks
from mmdet.utils import ConfigType, OptConfigType
from mmengine.config import ConfigDict
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from pmtseg_mm.models.layers.text_encoder import TaskTextEncoder
from pmtseg_mm.models.losses.task_contrastive_loss import FORMS as CONTRASTIVE_FORMS
from pmtseg_mm.models.losses.task_contrastive_loss import LEVELS as CONTRASTIVE_LEVELS
from pmtseg_mm.structures import TASKS, check_tasks

PROMPT_MODES = ('psh', 'lv', 'nt', 'none')


def build_task_targets(task: str, gt_labels: Tensor, gt_masks: Union[BitmapMasks, Tensor],
                       gt_sem_seg: Optional[Tensor], num_things_classes: int,
                       num_stuff_classes: int) -> Tuple[Tensor, Tensor]:
    """Targets of one image for ``task``, all derived from its panoptic ground truth.

    Args:
        task (str): 'semantic', 'instance' or 'panoptic'.
        gt_labels (Tensor): Thing instance labels (G,), in [0, num_things_classes).
        gt_masks (BitmapMasks | Tensor): Thing instance masks (G, H, W).
        gt_sem_seg (Tensor, optional): Semantic map (1, H, W) or (H, W) of all classes,
            255 (any value >= num_classes) = ignore. None for instance-only data.
        num_things_classes (int): Number of thing classes (the lowest class ids).
        num_stuff_classes (int): Number of stuff classes.

    Returns:
        tuple[Tensor, Tensor]: labels (n,) long and masks (n, H, W) long:

        - instance: the thing instances, in the given order;
        - panoptic: thing instances, then one mask per stuff class present (ascending), as
          mmdet's ``preprocess_panoptic_gt``;
        - semantic: one mask per class present (ascending), thing instances of a class merged
          (union of the instance masks and the class's pixels in ``gt_sem_seg``).
    """
    if task not in TASKS:
        raise ValueError(f'task must be one of {TASKS}, got {task!r}.')
    num_classes = num_things_classes + num_stuff_classes
    device = gt_labels.device
    if isinstance(gt_masks, BitmapMasks):
        things = gt_masks.to_tensor(dtype=torch.bool, device=device)
    else:
        things = gt_masks.to(device=device, dtype=torch.bool)
    if things.shape[0] != gt_labels.shape[0]:
        raise ValueError(f'gt_instances has {gt_labels.shape[0]} labels but '
                         f'{things.shape[0]} masks.')
    if task == 'instance':
        return gt_labels.long(), things.long()

    sem = None if gt_sem_seg is None else gt_sem_seg.reshape(gt_sem_seg.shape[-2:]).to(device)
    present = [] if sem is None else [int(c) for c in torch.unique(sem) if c < num_classes]
    if task == 'panoptic':
        stuff = [c for c in present if c >= num_things_classes]
        labels = torch.cat([gt_labels.long(), gt_labels.new_tensor(stuff, dtype=torch.long)])
        masks = torch.cat([things] + [(sem == c)[None] for c in stuff])
        return labels, masks.long()

    classes = sorted(set(present) | {int(c) for c in gt_labels})
    masks = []
    for c in classes:
        mask = things[gt_labels == c].any(dim=0)
        if sem is not None:
            mask = mask | (sem == c)
        masks.append(mask)
    if not masks:
        return gt_labels.new_zeros((0, ), dtype=torch.long), things.long()
    return gt_labels.new_tensor(classes, dtype=torch.long), torch.stack(masks).long()


def repeat_rows(x: Tensor, times: int) -> Tensor:
    """``x.repeat_interleave(times, dim=0)`` as expand + flatten, which torch's ONNX exporter
    keeps dynamic in the batch (``times`` may be a traced size)."""
    return x[:, None].expand(-1, times, *([-1] * (x.dim() - 1))).flatten(0, 1)


@MODELS.register_module()
class NeckOutputPassThrough(BaseModule):
    """Pixel-decoder slot of :class:`PSHHead` when the neck (TMSFNeck) already produced the
    multi-scale task-common features ``(F_T^{1/4}, [F_T^{1/32}, F_T^{1/16}, F_T^{1/8}])``.

    It checks that format (the output format of mmdet's ``MSDeformAttnPixelDecoder``) and
    returns it unchanged, so no second pixel decoder runs.

    Args:
        in_channels (list[int]): Set by ``Mask2FormerHead``; not used (the neck consumed the
            backbone levels).
        feat_channels (int): Channels expected for the multi-scale features.
        out_channels (int): Channels expected for the mask feature.
        encoder (dict): ``encoder.layer_cfg.self_attn_cfg.num_levels`` = number of multi-scale
            levels expected (mirrors the pixel-decoder config read by ``Mask2FormerHead``).
    """

    def __init__(self, in_channels: Sequence[int], feat_channels: int, out_channels: int,
                 encoder: ConfigType) -> None:
        super().__init__()
        self.feat_channels = feat_channels
        self.out_channels = out_channels
        self.num_levels = encoder['layer_cfg']['self_attn_cfg']['num_levels']

    def forward(self, x: Tuple[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, List[Tensor]]:
        """Return ``(mask_feature, multi_scale_features)`` after checking shapes."""
        if not (isinstance(x, (tuple, list)) and len(x) == 2 and isinstance(x[0], Tensor)):
            raise TypeError('PSHHead expects the neck output (mask_feature, [multi-scale '
                            f'features]); got {type(x).__name__} of length {len(x)}.')
        mask_feature, multi_scale = x[0], list(x[1])
        if mask_feature.dim() != 4 or mask_feature.shape[1] != self.out_channels:
            raise ValueError(f'mask_feature must be (B, {self.out_channels}, H, W) '
                             f'(head `out_channels`), got {tuple(mask_feature.shape)}.')
        if len(multi_scale) != self.num_levels or any(
                f.dim() != 4 or f.shape[1] != self.feat_channels for f in multi_scale):
            raise ValueError(f'expected {self.num_levels} multi-scale features (B, '
                             f'{self.feat_channels}, h, w) (head `feat_channels`), got '
                             f'{[tuple(f.shape) for f in multi_scale]}.')
        return mask_feature, multi_scale


class TaskQueryGenerator(BaseModule):
    """Task-level object queries Q_task (sec. III-D-2) from F_T^{1/4} and I_task.

    Full self-attention over all 1/4-scale tokens is unaffordable (16384 tokens for a 512²
    input), so F_T^{1/4} is average-pooled to at most ``pool_size``² tokens. N-1 query slots,
    initialised with I_task plus a learned slot embedding, pass through a ``num_layers``-layer
    Transformer (self-attention among slots, cross-attention to the pooled tokens, FFN), and
    are concatenated with I_task into N queries (OneFormer's task-conditioned query init); one
    final LayerNorm over all N puts I_task and the slots on the same scale.
    Cost per image and layer: O((N-1)² + (N-1)·pool_size²) attention entries, independent of
    the input size (100 queries, 16² pool: ≈ 35k entries per head).

    Args:
        in_channels (int): Channels of F_T^{1/4}.
        embed_dims (int): Query dimension.
        num_queries (int): N.
        num_layers (int): Transformer layers. Defaults to 2.
        num_heads (int): Attention heads. Defaults to 8.
        pool_size (int): Side of the pooled token grid. Defaults to 16.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dims: int,
                 num_queries: int,
                 num_layers: int = 2,
                 num_heads: int = 8,
                 pool_size: int = 16) -> None:
        super().__init__()
        if num_queries < 2:
            raise ValueError(f'PSHHead: `num_queries` must be >= 2, got {num_queries}.')
        self.pool_size = pool_size
        self.input_proj = (
            nn.Identity() if in_channels == embed_dims else nn.Linear(in_channels, embed_dims))
        self.slot_embed = nn.Embedding(num_queries - 1, embed_dims)
        layer = nn.TransformerDecoderLayer(
            embed_dims,
            num_heads,
            dim_feedforward=4 * embed_dims,
            dropout=0.0,
            batch_first=True,
            norm_first=True)
        self.layers = nn.TransformerDecoder(layer, num_layers)
        # one LayerNorm over all N queries puts I_task and the generated slots on one scale
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, feature: Tensor, pos: Tensor, task_embed: Tensor) -> Tensor:
        """
        Args:
            feature (Tensor): F_T^{1/4}, (B, C_in, H, W).
            pos (Tensor): Positional encoding of the pooled grid, (B, C, h, w).
            task_embed (Tensor): I_task, (B·T, C): T prompts per image, rows ordered (image,
                task); the pooled tokens of each image are computed once for its T rows.

        Returns:
            Tensor: Q_task, (B·T, N, C).
        """
        tokens = F.adaptive_avg_pool2d(feature, pos.shape[-2:]).flatten(2).transpose(1, 2)
        memory = self.input_proj(tokens) + pos.flatten(2).transpose(1, 2)
        memory = repeat_rows(memory, task_embed.shape[0] // feature.shape[0])
        slots = task_embed[:, None] + self.slot_embed.weight[None]
        slots = self.layers(slots, memory)
        return self.norm(torch.cat([slots, task_embed[:, None]], dim=1))

    def pooled_shape(self, feature: Tensor) -> Tuple[int, int]:
        """Pooled grid size for ``feature`` (never larger than the feature itself)."""
        h, w = feature.shape[-2:]
        return min(h, self.pool_size), min(w, self.pool_size)


@MODELS.register_module()
class PSHHead(Mask2FormerHead):
    """Prompt-driven segmentation head (sec. III-D).

    Mask2Former's decoder (masked attention, per-layer ``_forward_head``, Hungarian matching on
    sampled points, ``loss_by_feat``) with task-conditioned initial queries Q_task replacing the
    learned ``query_feat`` (the learned positional ``query_embed`` is kept).

    Input ``x`` is the TMSFNeck output ``(F_T^{1/4}, [F_T^{1/32}, F_T^{1/16}, F_T^{1/8}])``; no
    second pixel decoder runs unless ``pixel_decoder`` is given (then ``x`` is multi-level
    backbone features, as for stock Mask2Former).

    Key/value scales (ours): the paper's decoder "attends to F_T^{1/4 ... 1/32}"; here, as in
    Mask2Former, decoder layer l attends to F_T^{1/32}, F_T^{1/16}, F_T^{1/8} in turn (l mod 3)
    and F_T^{1/4} is the mask feature every layer's masks are read from: masked attention at
    1/4 would cost 16x that at 1/16 per layer for features the masks already use.

    Args:
        class_names (Sequence[str], optional): Category names, things first (``num_classes``
            of them), for the label texts; required when L_CON is used.
        prompt_mode (str): Task encoding (Table XI):
            'psh' - text prompt "The task is {task}." → text encoder → 2-layer MLP →
            I_task (sec. III-D-1), plus label-level texts and L_CON (the full PSH); 'nt' -
            natural-language task encoding: the text encoder's sentence embedding of the same
            prompt is I_task itself (no task MLP), without label-level texts / L_CON; 'lv' - a
            learnable vector per task as I_task, without text; 'none' - plain Mask2Former
            learned queries (no task conditioning, the "w/o PSH" baseline, trained on one
            task's targets, panoptic by default, and post-processed into all three outputs).
            The label-level texts reach the model only through L_CON (eq. 12-14), so 'psh'
            with ``use_contrastive=False`` (Table X, w/o L_CON) differs from 'nt' (Table XI)
            by the 2-layer task MLP only.
        use_contrastive (bool, optional): Add L_CON (Table X). Only possible with 'psh';
            None means True for 'psh' and False otherwise.
        contrastive_form (str): Positives of L_CON (:class:`TaskContrastiveLoss`):
            'multi_positive' (default: slots sharing a label text are positives of each other,
            so a perfect alignment gives ≈ 0) or 'literal' (eq. 12-13 as printed: slot i only;
            floor ≈ 2·(n_pad/N)·ln n_pad).
        contrastive_level (str): 'query' (paper, eq. 12-14): within each image, the N slots of
            Q_task against the N slots of Q_label. 'batch' (OneFormer's query-text contrast):
            each image's whole query set Q_task (flattened) against the set Q_label of every
            image in the batch; unmatched slots then carry a task-specific padding text
            ("{pad_text} for {task}"), so the text set also encodes the task. A batch of one
            image gives 0. Both levels take either form. Defaults to 'query'.
        task_probs (dict, optional): Sampling probability of each task during training (eq.
            11); normalised; missing tasks are never sampled. None: 0.3 semantic / 0.3
            instance / 0.4 panoptic, or panoptic only for ``prompt_mode='none'`` (a head
            without task conditioning must train on a single task's targets).
        task_prompt (str): Task prompt template with one ``{}`` for the task name.
        label_prompt (str): Label text template with one ``{}`` for the category name.
        pad_text (str): Label text of query slots without a matched ground-truth segment
            (Mask2Former's "no object"); it must differ from every class's label text (a
            class called "background", as in UBCV2, has its own text). Defaults to "RS data
            without a matched segment".
        text_encoder (dict): :class:`TaskTextEncoder` config; its ``out_channels`` is set to
            ``feat_channels``.
        query_generator (dict): ``num_layers``, ``num_heads``, ``pool_size`` of the Q_task
            generator (:class:`TaskQueryGenerator`).
        label_encoder (dict): ``num_layers``, ``num_heads`` of the Transformer encoder producing
            Q_label from the label-text embeddings.
        contrastive_tau (float): Temperature τ of L_CON. Defaults to 0.07 (ours: the paper
            gives none; CLIP's initial value, see :class:`TaskContrastiveLoss`).
        loss_con_weight (float): β of eq. 16. Defaults to 0.5.
        pixel_decoder (dict, optional): See above. Defaults to None (pass-through).
        Other args: as :class:`mmdet.models.Mask2FormerHead`.
    """

    def __init__(self,
                 in_channels: List[int],
                 feat_channels: int,
                 out_channels: int,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 num_queries: int = 100,
                 num_transformer_feat_level: int = 3,
                 pixel_decoder: OptConfigType = None,
                 class_names: Optional[Sequence[str]] = None,
                 prompt_mode: str = 'psh',
                 use_contrastive: Optional[bool] = None,
                 contrastive_form: str = 'multi_positive',
                 contrastive_level: str = 'query',
                 task_probs: Optional[Dict[str, float]] = None,
                 task_prompt: str = 'The task is {}.',
                 label_prompt: str = 'RS data with a {}',
                 pad_text: str = 'RS data without a matched segment',
                 text_encoder: ConfigType = dict(type='TaskTextEncoder'),
                 query_generator: ConfigType = dict(num_layers=2, num_heads=8, pool_size=16),
                 label_encoder: ConfigType = dict(num_layers=2, num_heads=8),
                 contrastive_tau: float = 0.07,
                 loss_con_weight: float = 0.5,
                 **kwargs) -> None:
        if pixel_decoder is None:
            pixel_decoder = dict(
                type='NeckOutputPassThrough',
                encoder=dict(layer_cfg=dict(self_attn_cfg=dict(
                    num_levels=num_transformer_feat_level))))
        super().__init__(
            in_channels=in_channels,
            feat_channels=feat_channels,
            out_channels=out_channels,
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            num_queries=num_queries,
            num_transformer_feat_level=num_transformer_feat_level,
            pixel_decoder=ConfigDict(pixel_decoder),
            **kwargs)
        if prompt_mode not in PROMPT_MODES:
            raise ValueError(f'PSHHead: `prompt_mode` must be one of {PROMPT_MODES}, '
                             f'got {prompt_mode!r}.')
        if use_contrastive is None:
            use_contrastive = prompt_mode == 'psh'
        if use_contrastive and prompt_mode != 'psh':
            raise ValueError("PSHHead: `use_contrastive=True` needs `prompt_mode='psh'` "
                             f'(label-level texts), got {prompt_mode!r}.')
        if contrastive_level not in CONTRASTIVE_LEVELS:
            raise ValueError(f'PSHHead: `contrastive_level` must be one of {CONTRASTIVE_LEVELS}, '
                             f'got {contrastive_level!r}.')
        if contrastive_form not in CONTRASTIVE_FORMS:
            raise ValueError(f'PSHHead: `contrastive_form` must be one of {CONTRASTIVE_FORMS}, '
                             f'got {contrastive_form!r}.')
        self.prompt_mode = prompt_mode
        self.use_contrastive = use_contrastive
        if task_probs is None:
            task_probs = (dict(panoptic=1.0) if prompt_mode == 'none' else
                          dict(semantic=0.3, instance=0.3, panoptic=0.4))
        self.task_probs = self._check_task_probs(task_probs)
        if prompt_mode == 'none' and int((self.task_probs > 0).sum()) != 1:
            raise ValueError("PSHHead: `prompt_mode='none'` (no task conditioning) trains on one "
                             'task\'s targets: `task_probs` must give a probability to exactly '
                             f'one task, got {task_probs}.')
        for key, template in (('task_prompt', task_prompt), ('label_prompt', label_prompt)):
            if template.count('{}') != 1:
                raise ValueError(f'PSHHead: `{key}` must contain exactly one "{{}}", '
                                 f'got {template!r}.')
        self.task_prompts = [task_prompt.format(t) for t in TASKS]

        if prompt_mode == 'none':
            return
        # Q_task replaces the learned initial query features
        del self.query_feat
        if prompt_mode == 'lv':
            self.task_embed = nn.Embedding(len(TASKS), feat_channels)
        if prompt_mode in ('psh', 'nt'):
            text_encoder_ = copy.deepcopy(dict(text_encoder))
            text_encoder_.update(out_channels=feat_channels)
            self.text_encoder: TaskTextEncoder = MODELS.build(text_encoder_)
            # tokenise (and cache) the fixed prompts now: too long prompts fail at build time
            self.text_encoder.tokenize(self.task_prompts)
        if prompt_mode == 'psh':
            # 2-layer MLP: task prompt embedding → I_task
            self.task_mlp = nn.Sequential(
                nn.Linear(feat_channels, feat_channels), nn.ReLU(inplace=True),
                nn.Linear(feat_channels, feat_channels))
        self.query_generator = TaskQueryGenerator(out_channels, feat_channels, num_queries,
                                                  **query_generator)
        if use_contrastive:
            num_classes = num_things_classes + num_stuff_classes
            if class_names is None or len(class_names) != num_classes:
                raise ValueError(
                    f'PSHHead: `class_names` must list the {num_classes} category names '
                    f'(things first) for the label texts, got {class_names!r}.')
            # class texts, the padding text, then (batch-level L_CON) one padding text per task
            class_texts = [label_prompt.format(n) for n in class_names]
            pad_texts = [pad_text] + ([f'{pad_text} for {t}' for t in TASKS]
                                      if contrastive_level == 'batch' else [])
            clash = sorted(set(pad_texts) & set(class_texts))
            if clash:
                raise ValueError(f'PSHHead: `pad_text` gives {clash}, the label text of a class; '
                                 'unmatched slots need a text of their own.')
            self.label_texts = class_texts + pad_texts
            self.text_encoder.tokenize(self.label_texts)
            self.loss_con = MODELS.build(
                dict(type='TaskContrastiveLoss', form=contrastive_form, level=contrastive_level,
                     tau=contrastive_tau, loss_weight=loss_con_weight))
            layer = nn.TransformerEncoderLayer(
                feat_channels,
                label_encoder.get('num_heads', 8),
                dim_feedforward=4 * feat_channels,
                dropout=0.0,
                batch_first=True,
                norm_first=True)
            self.label_encoder = nn.TransformerEncoder(
                layer, label_encoder.get('num_layers', 2), enable_nested_tensor=False)

    @staticmethod
    def _check_task_probs(task_probs: Dict[str, float]) -> Tensor:
        unknown = set(task_probs) - set(TASKS)
        if unknown or any(p < 0 for p in task_probs.values()) or sum(
                task_probs.values()) <= 0:
            raise ValueError(f'PSHHead: `task_probs` must map tasks in {TASKS} to '
                             f'non-negative probabilities with a positive sum, got {task_probs}.')
        probs = torch.tensor([float(task_probs.get(t, 0.0)) for t in TASKS])
        return probs / probs.sum()

    @property
    def task_conditioned(self) -> bool:
        """Whether predictions depend on the task prompt."""
        return self.prompt_mode != 'none'

    def sample_tasks(self, num_samples: int) -> List[str]:
        """Draw one task per sample with probabilities ``task_probs`` (eq. 11)."""
        idx = torch.multinomial(self.task_probs, num_samples, replacement=True)
        return [TASKS[i] for i in idx.tolist()]

    def task_embeddings(self, tasks: Sequence[str], device: torch.device) -> Tensor:
        """I_task of each sample, (B, feat_channels)."""
        if self.prompt_mode == 'lv':
            table = self.task_embed.weight
        elif self.prompt_mode == 'nt':
            table = self.text_encoder(self.task_prompts)
        else:
            table = self.task_mlp(self.text_encoder(self.task_prompts))
        return table[torch.tensor([TASKS.index(t) for t in tasks], device=device)]

    def _check_tasks(self, tasks: Optional[Sequence[str]], batch_size: int) -> List[str]:
        if tasks is None:
            return ['panoptic'] * batch_size
        tasks = [tasks] * batch_size if isinstance(tasks, str) else list(tasks)
        if len(tasks) != batch_size or any(t not in TASKS for t in tasks):
            raise ValueError(f'tasks must be {batch_size} names from {TASKS}, got {tasks}.')
        return tasks

    def _forward_head(self, decoder_out: Tensor, mask_feature: Tensor,
                      attn_mask_target_size: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
        """``Mask2FormerHead._forward_head`` for B·T decoder rows ordered (image, task) on B
        mask features: the T rows of an image are passed to mmdet as T·N queries of that image,
        so its mask feature is shared without a copy.

        Returns:
            tuple[Tensor, Tensor, Tensor]: class logits (B·T, N, num_classes + 1), mask logits
            (B·T, N, H, W) and the cross-attention mask (B·T·num_heads, N, h·w).
        """
        rows, num_queries = decoder_out.shape[:2]
        batch_size = mask_feature.shape[0]
        num_tasks = rows // batch_size
        cls_pred, mask_pred, attn_mask = super()._forward_head(
            decoder_out.reshape(batch_size, num_tasks * num_queries, -1), mask_feature,
            attn_mask_target_size)
        # (B·heads, T·N, hw) -> (B, T, heads, N, hw) -> (B·T·heads, N, hw)
        attn_mask = attn_mask.unflatten(0, (-1, self.num_heads)).unflatten(
            2, (-1, num_queries)).transpose(1, 2).flatten(0, 2)
        return (cls_pred.reshape(rows, num_queries, -1),
                mask_pred.reshape(rows, num_queries, *mask_pred.shape[-2:]), attn_mask)

    def _decode(self, x: Tuple, tasks: List[str], every_image: bool = False
                ) -> Tuple[List[Tensor], List[Tensor], Optional[Tensor]]:
        """Mask2Former decoding with Q_task as initial queries; also returns Q_task.

        ``tasks`` holds the prompt of each image (B decoder rows) or, with ``every_image``, the
        T prompts every image is decoded with: B·T rows ordered (image, task). The memories,
        their positional encodings, the mask features and the query generator's pooled tokens
        are computed once per image and repeated to its T rows, so one call decodes T task
        prompts (``forward_tasks``). Row counts come from tensor shapes, so a traced call keeps
        the batch dynamic.
        """
        mask_features, multi_scale = self.pixel_decoder(x)
        batch_size = mask_features.shape[0]
        num_tasks = len(tasks) if every_image else 1
        num_rows = batch_size * num_tasks
        memories, memory_pos = [], []
        for level in range(self.num_transformer_feat_level):
            feat = multi_scale[level]
            memory = self.decoder_input_projs[level](feat).flatten(2).transpose(1, 2)
            memory = memory + self.level_embed.weight[level][None, None]
            memories.append(repeat_rows(memory, num_tasks))
            pos = self.decoder_positional_encoding(None, input=feat)
            memory_pos.append(repeat_rows(pos.flatten(2).transpose(1, 2), num_tasks))

        if self.task_conditioned:
            task_embed = self.task_embeddings(tasks, mask_features.device)
            if every_image:
                task_embed = task_embed.repeat(batch_size, 1)
            grid = mask_features.new_zeros(
                (batch_size, ) + self.query_generator.pooled_shape(mask_features),
                dtype=torch.bool)
            q_task = self.query_generator(mask_features,
                                          self.decoder_positional_encoding(grid), task_embed)
        else:
            q_task = None
        query_feat = (self.query_feat.weight[None].repeat(num_rows, 1, 1)
                      if q_task is None else q_task)
        query_embed = self.query_embed.weight[None].repeat(num_rows, 1, 1)

        cls_pred, mask_pred, attn_mask = self._forward_head(query_feat, mask_features,
                                                            multi_scale[0].shape[-2:])
        cls_preds, mask_preds = [cls_pred], [mask_pred]
        for i, layer in enumerate(self.transformer_decoder.layers):
            level = i % self.num_transformer_feat_level
            # a query whose mask covers nothing attends everywhere (not in place: torch's ONNX
            # exporter mis-broadcasts a boolean-mask assignment of a lower-rank mask)
            attn_mask = attn_mask & ~attn_mask.all(dim=-1, keepdim=True)
            query_feat = layer(
                query=query_feat,
                key=memories[level],
                value=memories[level],
                query_pos=query_embed,
                key_pos=memory_pos[level],
                cross_attn_mask=attn_mask,
                query_key_padding_mask=None,
                key_padding_mask=None)
            next_size = multi_scale[(i + 1) % self.num_transformer_feat_level].shape[-2:]
            cls_pred, mask_pred, attn_mask = self._forward_head(query_feat, mask_features,
                                                                next_size)
            cls_preds.append(cls_pred)
            mask_preds.append(mask_pred)
        return cls_preds, mask_preds, q_task

    def forward(self,
                x: Tuple,
                batch_data_samples: SampleList,
                tasks: Optional[Union[str, Sequence[str]]] = None
                ) -> Tuple[List[Tensor], List[Tensor]]:
        """Run the decoder with the prompt of ``tasks`` (one per sample or one for all;
        None = 'panoptic').

        Returns:
            tuple[list[Tensor], list[Tensor]]: class logits (B, N, num_classes + 1) and mask
            logits (B, N, H/4, W/4) of the initial queries and of every decoder layer.
        """
        tasks = self._check_tasks(tasks, len(batch_data_samples))
        cls_preds, mask_preds, _ = self._decode(x, tasks)
        return cls_preds, mask_preds

    def forward_tasks(self, x: Tuple, batch_data_samples: SampleList,
                      tasks: Sequence[str]) -> Tuple[List[Tensor], List[Tensor]]:
        """One decoder call for T task prompts: the B images × T tasks are B·T decoder rows
        sharing each image's memories (see ``_decode``). Row (b, t) computes what
        ``forward(x, batch_data_samples, tasks[t])`` computes for image b.

        Args:
            tasks (Sequence[str]): T distinct task names.

        Returns:
            tuple[list[Tensor], list[Tensor]]: class logits (B, T, N, num_classes + 1) and mask
            logits (B, T, N, H/4, W/4) of the initial queries and of every decoder layer.
        """
        tasks = list(check_tasks(tasks))
        cls_preds, mask_preds, _ = self._decode(x, tasks, every_image=True)
        return ([c.unflatten(0, (-1, len(tasks))) for c in cls_preds],
                [m.unflatten(0, (-1, len(tasks))) for m in mask_preds])

    def task_targets(self, batch_data_samples: SampleList,
                     tasks: Sequence[str]) -> List[InstanceData]:
        """Ground-truth segments of each sample for its task (see :func:`build_task_targets`)."""
        targets = []
        for data_sample, task in zip(batch_data_samples, tasks):
            gt = data_sample.gt_instances
            sem = data_sample.gt_sem_seg.sem_seg if 'gt_sem_seg' in data_sample else None
            labels, masks = build_task_targets(task, gt.labels, gt.masks, sem,
                                               self.num_things_classes, self.num_stuff_classes)
            targets.append(InstanceData(labels=labels, masks=masks))
        return targets

    def get_targets(self, cls_scores_list: List[Tensor], mask_preds_list: List[Tensor],
                    batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                    return_sampling_results: bool = False) -> Tuple:
        """``MaskFormerHead.get_targets``, keeping the slot labels (B, N) of the call:
        ``loss_by_feat`` calls it once per decoder layer, in order, so after it the last
        layer's Hungarian assignment is kept for L_CON (no second matching)."""
        targets = super().get_targets(cls_scores_list, mask_preds_list, batch_gt_instances,
                                      batch_img_metas, return_sampling_results)
        self._slot_labels = torch.stack(targets[0])
        return targets

    def contrastive_loss(self, q_task: Tensor, slot_labels: Tensor,
                         tasks: Sequence[str]) -> Tensor:
        """β·L_CON (eq. 12-14, see :class:`TaskContrastiveLoss`).

        Query slot i is paired with the label text of the ground-truth segment that L_PSH's
        Hungarian matching of the last decoder layer assigned to it ("RS data with a
        {category}"); unmatched slots (label ``num_classes``) with ``pad_text`` (batch level:
        "{pad_text} for {task}", the image's sampled task). The label text embeddings of the N
        slots pass through the label encoder to give Q_label.

        Args:
            q_task (Tensor): Q_task, (B, N, C).
            slot_labels (Tensor): (B, N) assigned class of every slot, ``num_classes`` if none.
            tasks (Sequence[str]): The sampled task of each image.
        """
        slot_texts = slot_labels
        if self.loss_con.level == 'batch':  # task-specific padding texts follow pad_text
            task_pads = slot_labels.new_tensor([TASKS.index(t) + 1 for t in tasks])[:, None]
            slot_texts = torch.where(slot_labels == self.num_classes, slot_labels + task_pads,
                                     slot_labels)
        q_label = self.label_encoder(self.text_encoder(self.label_texts)[slot_texts])
        return self.loss_con(q_task, q_label, slot_texts)

    def loss(self, x: Tuple, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """L_PSH (eq. 15) per decoder layer and β·L_CON as ``loss_con``, one sampled task per
        sample."""
        batch_img_metas = [data_sample.metainfo for data_sample in batch_data_samples]
        tasks = self.sample_tasks(len(batch_data_samples))
        batch_gt_instances = self.task_targets(batch_data_samples, tasks)
        cls_preds, mask_preds, q_task = self._decode(x, tasks)
        losses = self.loss_by_feat(cls_preds, mask_preds, batch_gt_instances, batch_img_metas)
        if self.use_contrastive:
            losses['loss_con'] = self.contrastive_loss(q_task, self._slot_labels, tasks)
        return losses

    def predict(self, x: Tuple, batch_data_samples: SampleList,
                task: str = 'panoptic') -> Tuple[Tensor, Tensor]:
        """Last-layer class logits (B, N, num_classes + 1) and mask logits upsampled to the
        padded input size (B, N, H, W), with the prompt of ``task`` for every sample."""
        cls_preds, mask_preds = self(x, batch_data_samples, task)
        input_shape = batch_data_samples[0].metainfo['batch_input_shape']
        mask_pred = F.interpolate(
            mask_preds[-1], size=tuple(input_shape), mode='bilinear', align_corners=False)
        return cls_preds[-1], mask_pred
