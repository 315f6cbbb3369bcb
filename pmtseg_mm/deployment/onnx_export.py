"""Export of PMTSeg and the Mask2Former baselines to ONNX (tensor forward only, no custom ops).

The graph takes the normalised, channel-stacked window ``inputs`` (B, ΣC, H, W) float32 and
returns, per exported task prompt, the last decoder layer's class logits ``{task}_cls``
(B, N, num_classes + 1) and mask logits ``{task}_masks`` (B, N, H/4, W/4), plus
``sem_scores`` (B, num_classes, H, W): MaskFormer's semantic scores
(:meth:`MultiTaskFusionHead.semantic_scores`) of the semantic prompt's outputs with the masks
resized to the window, whose argmax over classes is the semantic map.

How the export differs from eager inference, without changing the model:

- the task embeddings I_task are computed once at export (text encoder + task MLP) and stored
  as a constant table: no text encoder in the graph;
- multi-scale deformable attention runs mmcv's pure-PyTorch path
  (``multi_scale_deformable_attn_pytorch``: one ``GridSample`` per level, opset >= 16) instead
  of the package's ``F.embedding_bag`` CPU path or mmcv's compiled kernel.
"""
import copy
import json
import os.path as osp
from unittest import mock
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.ops import MultiScaleDeformableAttention
from mmdet.structures import DetDataSample
from mmengine.config import Config
from torch import Tensor, nn

from pmtseg_mm.models.layers.ms_deform_attn import FastMultiScaleDeformableAttention
from pmtseg_mm.structures import TASKS, check_tasks
from pmtseg_mm.version import __version__

#: ONNX opset: GridSample (bilinear, zeros padding) exists from opset 16.
OPSET = 17
#: Name of the graph input.
INPUT_NAME = 'inputs'
#: Name of the semantic-scores output.
SEM_SCORES = 'sem_scores'


def output_names(tasks: Sequence[str], task_conditioned: bool = True) -> List[str]:
    """Graph outputs: ``{task}_cls``, ``{task}_masks`` per task prompt (a head without task
    conditioning, e.g. Mask2Former, has one pass for all ``tasks``: ``cls``, ``masks``), then
    ``sem_scores``."""
    if not task_conditioned:
        return ['cls', 'masks', SEM_SCORES]
    return [f'{t}_{kind}' for t in tasks for kind in ('cls', 'masks')] + [SEM_SCORES]


def _window_samples(height: int, width: int) -> List[DetDataSample]:
    """The data samples of a network call on ``height`` x ``width`` windows: one, as the calls
    take the batch from their input."""
    shape = (height, width)
    meta = dict(batch_input_shape=shape, img_shape=shape, ori_shape=shape, pad_shape=shape,
                scale_factor=(1.0, 1.0))
    return [DetDataSample(metainfo=meta)]


def _use_pytorch_deform_attn(model: nn.Module) -> int:
    """Make every :class:`FastMultiScaleDeformableAttention` of ``model`` mmcv's
    ``MultiScaleDeformableAttention`` (same parameters; on CPU tensors its forward is
    ``multi_scale_deformable_attn_pytorch``, built on ``F.grid_sample``). Returns the count."""
    count = 0
    for module in model.modules():
        if isinstance(module, FastMultiScaleDeformableAttention):
            module.__class__ = MultiScaleDeformableAttention
            count += 1
    return count


class OnnxExportWrapper(nn.Module):
    """The tensor forward of a PMTSeg or Mask2Former model for ONNX export (see module doc).

    Args:
        model (nn.Module): A built PMTSeg or mmdet Mask2Former/MaskFormer detector (it is
            deep-copied; the given model is left as it is).
        tasks (Sequence[str]): Task prompts decoded (PMTSeg) or tasks the single pass serves
            (heads without task conditioning, Mask2Former).
    """

    def __init__(self, model: nn.Module, tasks: Sequence[str]) -> None:
        super().__init__()
        self.tasks = check_tasks(tasks, '--tasks')
        model = copy.deepcopy(model).cpu().eval()
        _use_pytorch_deform_attn(model)
        head = model.panoptic_head
        self.task_conditioned = bool(getattr(head, 'task_conditioned', False))
        if self.task_conditioned:
            with torch.no_grad():
                table = head.task_embeddings(TASKS, torch.device('cpu')).detach().clone()
            # I_task as a constant: the text encoder is not traced (nor kept)
            self.register_buffer('task_table', table, persistent=False)
            head.task_embeddings = self._task_embeddings
            for name in ('text_encoder', 'task_mlp', 'label_encoder'):
                if hasattr(head, name):
                    delattr(head, name)
        self.model = model
        self.num_classes = head.num_classes

    def _task_embeddings(self, tasks: Sequence[str], device: torch.device) -> Tensor:
        """Replaces ``PSHHead.task_embeddings``: rows of the stored table."""
        return self.task_table[[TASKS.index(t) for t in tasks]]

    @property
    def head_tasks(self) -> Tuple[str, ...]:
        """Prompts of the head call: every task, or one pass for an unconditioned head."""
        return self.tasks if self.task_conditioned else self.tasks[:1]

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Outputs in the order of :func:`output_names`."""
        height, width = (int(s) for s in inputs.shape[-2:])  # one window per graph
        samples = _window_samples(height, width)
        if self.task_conditioned:
            cls_preds, mask_preds = self.model._forward(inputs, samples, tasks=self.tasks)
            cls_all, mask_all = cls_preds[-1], mask_preds[-1]  # (B, T, N, ...)
        else:
            cls_preds, mask_preds = self.model._forward(inputs, samples)
            cls_all, mask_all = cls_preds[-1][:, None], mask_preds[-1][:, None]
        outputs: List[Tensor] = []
        for t in range(cls_all.shape[1]):
            outputs += [cls_all[:, t], mask_all[:, t]]
        sem = self.tasks.index('semantic') if self.task_conditioned else 0
        masks = F.interpolate(mask_all[:, sem], size=(height, width), mode='bilinear',
                              align_corners=False)
        outputs.append(semantic_scores(cls_all[:, sem], masks))
        return tuple(outputs)


def semantic_scores(mask_cls: Tensor, mask_pred: Tensor) -> Tensor:
    """:meth:`MultiTaskFusionHead.semantic_scores` of a batch in one call: (B, N, C + 1) class
    logits and (B, N, H, W) mask logits -> (B, C, H, W)."""
    return torch.einsum('bqc,bqhw->bchw', F.softmax(mask_cls, dim=-1)[..., :-1],
                        mask_pred.sigmoid())


def normalisation(prep: nn.Module) -> Tuple[List[int], List[float], List[float]]:
    """Channel order, mean and std of a ``MultiModalDataPreprocessor``: the input is
    ``(x[order] - mean) / std`` (channel reorder: BGR -> RGB groups)."""
    order = prep._channel_order or list(range(prep.num_channels))
    mean = prep.mean.flatten().tolist() if prep._enable_normalize else [0.0] * len(order)
    std = prep.std.flatten().tolist() if prep._enable_normalize else [1.0] * len(order)
    return order, mean, std


def onnx_metadata(cfg: Config, prep: nn.Module, tasks: Sequence[str], window: int,
                  outputs: Sequence[str], config_name: str, task_conditioned: bool,
                  dynamic_batch: bool = False) -> Dict[str, str]:
    """``metadata_props`` (string values, JSON where structured) a runtime needs: modalities,
    channels, bands, dtype/value range, normalisation, classes with thing/stuff, tasks and
    outputs, window, batch axis, package version and config."""
    from pmtseg_mm.apis.inputs import ModalitySpec  # imports the data transforms
    spec = ModalitySpec(cfg)
    head = cfg.model.panoptic_head
    num_things, num_stuff = int(head.num_things_classes), int(head.num_stuff_classes)
    names = _class_names(cfg, num_things + num_stuff)
    modalities = []
    for name, channels in zip(spec.names, spec.channels):
        opts = spec.options[name]
        modalities.append(dict(
            name=name, channels=channels, bands=opts.get('bands'),
            dtype=list(opts['dtype']) if opts.get('dtype') else None,
            value_range=opts.get('value_range'), nodata=opts.get('nodata')))
    order, mean, std = normalisation(prep)
    return dict(
        format='pmtseg-mm-onnx/1',
        model_type='segmentor',
        package_version=__version__,
        config=config_name,
        input_name=INPUT_NAME,
        input_layout='NCHW float32: channels = the modalities stacked in the order of '
                     '`modalities` (as the package loads them: optical as cv2 reads it, BGR), '
                     'taken in `channel_order`, then (x - mean) / std',
        modalities=json.dumps(modalities),
        channel_order=json.dumps(order),
        mean=json.dumps(mean),
        std=json.dumps(std),
        window=json.dumps([window, window]),
        dynamic_batch=json.dumps(dynamic_batch),
        classes=json.dumps(names),
        thing_classes=json.dumps(names[:num_things]),
        stuff_classes=json.dumps(names[num_things:]),
        tasks=json.dumps(list(tasks)),
        task_conditioned=json.dumps(task_conditioned),
        outputs=json.dumps(list(outputs)),
        mask_stride=json.dumps(4),
        sem_scores='(B, num_classes, H, W) sum_q softmax(cls)_qc * sigmoid(mask_q); argmax '
                   'over classes = semantic map',
    )


def _class_names(cfg: Config, num_classes: int) -> List[str]:
    """Class names (things first): the head's, the test dataset's ``metainfo`` or its class's
    ``METAINFO``; ``class_i`` without any."""
    from mmdet.registry import DATASETS
    names = cfg.model.panoptic_head.get('class_names')
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    if not names:
        names = (dataset.get('metainfo') or {}).get('classes')
    if not names and isinstance(dataset.get('type'), str):
        dataset_cls = DATASETS.get(dataset['type'])
        names = getattr(dataset_cls, 'METAINFO', {}).get('classes')
    names = list(names) if names else [f'class_{i}' for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f'the config names {len(names)} classes but the head has {num_classes}')
    return names


def _pool_matrix(length: int, size: int, like: Tensor) -> Tensor:
    """(size, length) matrix of ``adaptive_avg_pool1d`` from ``length`` to ``size`` points."""
    eye = torch.eye(length, dtype=like.dtype, device=like.device)
    return F.adaptive_avg_pool1d(eye[None], size)[0].t().contiguous()


def build_model(cfg: Config, checkpoint: Optional[str] = None) -> nn.Module:
    """The detector of ``cfg`` on the CPU in eval mode, with ``checkpoint``'s weights (random
    weights without one)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.cpu().eval()


def export_onnx(cfg: Config, model: nn.Module, out: str, tasks: Optional[Sequence[str]] = None,
                window: int = 512, dynamic_batch: bool = False, config_name: str = '',
                opset: int = OPSET) -> Dict[str, str]:
    """Export ``model`` (built from ``cfg``, weights loaded) to ``out`` with torch's
    TorchScript-based exporter for a ``window`` x ``window`` input (batch 1, or any batch with
    ``dynamic_batch``); returns the metadata written to ``out``'s ``metadata_props``.

    The TorchScript-based exporter, not the dynamo one: ``torch.export`` fails on mmdet's pixel
    decoder (``torch._shape_as_tensor``; sizes read from the ``spatial_shapes`` tensor by mmcv's
    deformable attention are data-dependent there), while tracing freezes them to the window's
    sizes. Three tracing obstacles are lifted during the export only: adaptive pooling gets
    constant sizes, a boolean attention mask becomes ``Where(mask, -inf, 0)`` instead of a
    ``zeros_like`` constant of the traced batch, and ``nn.MultiheadAttention``'s fused eval fast
    path is switched off.

    Args:
        tasks: Task prompts to export (default: ``model.test_tasks``, else all three); must
            contain 'semantic' for a task-conditioned head (``sem_scores`` is its output).
        window: Window side H = W of the graph input (a multiple of 32).
        dynamic_batch: A dynamic batch axis (``batch``) on the input and every output.
    """
    import onnx
    if tasks is None:
        tasks = getattr(model, 'test_tasks', None) or TASKS
    tasks = check_tasks(tasks, '--tasks')
    if isinstance(window, bool) or not isinstance(window, int) or window < 32 or window % 32:
        raise ValueError(f'--window must be a positive multiple of 32 (the backbones\' total '
                         f'stride), got {window!r}')
    wrapper = OnnxExportWrapper(model, tasks).eval()
    if wrapper.task_conditioned and 'semantic' not in tasks:
        raise ValueError(f"--tasks must include 'semantic' (the sem_scores output comes from "
                         f'its prompt), got {tasks!r}')
    prep = model.data_preprocessor
    example = torch.zeros(1, prep.num_channels, window, window)
    names = output_names(tasks, wrapper.task_conditioned)

    def static_pool(x: Tensor, size: Sequence[int]) -> Tensor:
        """Adaptive pooling with the traced spatial sizes as constants (the exporter's adaptive
        pooling needs a static input shape, so the batch would be frozen): plain average pooling
        where the output divides the input, the same windows."""
        shape = tuple(int(d) for d in x.shape[-2:])
        size = tuple(int(s) for s in size)
        if all(i % o == 0 for i, o in zip(shape, size)):
            kernel = tuple(i // o for i, o in zip(shape, size))
            return F.avg_pool2d(x, kernel, kernel)
        # otherwise as averaging matrices, the windows [floor(i·n/m), ceil((i+1)·n/m))
        rows, cols = (_pool_matrix(n, m, x) for n, m in zip(shape, size))
        return rows @ x @ cols.t()

    canonical_mask = F._canonical_mask

    def where_mask(mask: Optional[Tensor], *args, target_type: torch.dtype,
                   **kwargs) -> Optional[Tensor]:
        """``F._canonical_mask`` of a boolean attention mask as ``Where(mask, -inf, 0)``: its
        ``zeros_like`` is exported as a constant of the traced shape, which fixes the batch."""
        if mask is None or mask.dtype != torch.bool:
            return canonical_mask(mask, *args, target_type=target_type, **kwargs)
        return torch.where(mask, torch.full((), float('-inf'), dtype=target_type),
                           torch.zeros((), dtype=target_type))

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # its fused op has no ONNX export
    try:
        with torch.no_grad(), mock.patch.object(F, 'adaptive_avg_pool2d', static_pool), \
                mock.patch.object(F, '_canonical_mask', where_mask):
            torch.onnx.export(wrapper, (example, ), out, dynamo=False, input_names=[INPUT_NAME],
                              output_names=names, opset_version=opset,
                              do_constant_folding=True, dynamic_axes={
                                  n: {0: 'batch'} for n in [INPUT_NAME] + names
                              } if dynamic_batch else None)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    meta = onnx_metadata(cfg, prep, tasks, window, names, config_name or osp.basename(
        cfg.filename or ''), wrapper.task_conditioned, dynamic_batch)
    proto = onnx.load(out)
    onnx.helper.set_model_props(proto, meta)
    # declared output shapes: the exporter's names for traced sizes can be wrong
    queries, classes = model.panoptic_head.num_queries, wrapper.num_classes
    shapes = dict(cls=(queries, classes + 1), masks=(queries, window // 4, window // 4),
                  scores=(classes, window, window))  # by the output name's last part
    for value in proto.graph.output:
        shape = ('batch' if dynamic_batch else 1, ) + shapes[value.name.rsplit('_', 1)[-1]]
        value.CopyFrom(onnx.helper.make_tensor_value_info(value.name, onnx.TensorProto.FLOAT,
                                                          shape))
    onnx.save(proto, out)
    return meta
