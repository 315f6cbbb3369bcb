"""onnxruntime backend: the network of a PMTSeg / Mask2Former model run from an exported file.

Only the network call changes. :meth:`OnnxRuntimeBackend.attach` turns a model built from the
config into a shell whose backbone and neck pass the normalised input through and whose head's
network call (``PSHHead.forward_tasks`` / mmdet's ``Mask2FormerHead.forward``) returns the
graph's last-layer class and mask logits. Everything else is the PyTorch code: the data
preprocessor, ``PMTSeg.predict`` / ``predict_window_scores``, mmdet's ``Mask2FormerHead.predict``
and the fusion heads' post-processing.
"""
import json
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import SampleList
from torch import Tensor, nn

from .onnx_export import INPUT_NAME, normalisation

#: metadata_props values stored as JSON (:func:`~.onnx_export.onnx_metadata`)
JSON_KEYS = ('modalities', 'channel_order', 'mean', 'std', 'window', 'classes', 'tasks',
             'task_conditioned', 'outputs')
FORMAT = 'pmtseg-mm-onnx/1'


class OnnxRuntimeBackend:
    """An exported graph (tools/deployment/pytorch2onnx.py) in an onnxruntime CPU session.

    Args:
        path (str): The ``.onnx`` file.
        threads (int, optional): onnxruntime intra-op threads (default: onnxruntime's choice).
    """

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        if not osp.isfile(path):
            raise FileNotFoundError(f'ONNX file (--onnx) {path!r} not found')
        try:
            import onnxruntime as ort
        except ImportError:
            raise ImportError('the onnxruntime backend needs onnxruntime '
                              '(pip install -r requirements/optional.txt)') from None
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.path = path
        self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        raw = self.session.get_modelmeta().custom_metadata_map
        if raw.get('format') != FORMAT or not set(JSON_KEYS) <= set(raw):
            raise ValueError(f'{path}: not a pmtseg-mm ONNX export (metadata_props format '
                             f'{raw.get("format")!r}, expected {FORMAT!r}); export it with '
                             'tools/deployment/pytorch2onnx.py')
        self.meta = {k: json.loads(raw[k]) for k in JSON_KEYS}
        self.window = tuple(self.meta['window'])
        #: whether one session call takes a whole batch (the graph input's batch axis)
        self.dynamic_batch = not isinstance(self.session.get_inputs()[0].shape[0], int)

    def _mismatch(self, key: str, ours: object, what: str,
                  theirs: Optional[object] = None) -> ValueError:
        theirs = self.meta[key] if theirs is None else theirs
        return ValueError(f'{self.path}: the ONNX metadata {key!r} is {theirs!r} but {what} '
                          f'is {ours!r}; export the model for these inputs '
                          '(tools/deployment/pytorch2onnx.py)')

    def check_window(self, shape: Sequence[int], what: str = 'the input window') -> None:
        """Refuse inputs of another (h, w) than the graph's window."""
        if tuple(int(s) for s in shape) != self.window:
            raise self._mismatch('window', list(shape), what)

    def check(self, model: nn.Module, names: Sequence[str], channels: Sequence[int]) -> None:
        """Refuse a graph whose metadata does not match the model's inputs and outputs:
        modalities (names, channels), channel order, mean/std, class count, task
        conditioning."""
        theirs = [(m['name'], m['channels']) for m in self.meta['modalities']]
        ours = [(str(n), int(c)) for n, c in zip(names, channels)]
        if theirs != ours:
            raise self._mismatch('modalities', ours, 'the config\'s (name, channels)', theirs)
        for key, value in zip(('channel_order', 'mean', 'std'),
                              normalisation(model.data_preprocessor)):
            if len(value) != len(self.meta[key]) or not np.allclose(
                    value, self.meta[key], rtol=1e-6, atol=0):
                raise self._mismatch(key, value, 'the config\'s data preprocessor\'s')
        num_classes = model.panoptic_fusion_head.num_classes
        if len(self.meta['classes']) != num_classes:
            raise self._mismatch('classes', f'{num_classes} classes', 'the config\'s head')
        conditioned = bool(getattr(model.panoptic_head, 'task_conditioned', False))
        if self.meta['task_conditioned'] != conditioned:
            raise self._mismatch('task_conditioned', conditioned, 'the config\'s head')

    def attach(self, model: nn.Module, names: Sequence[str],
               channels: Sequence[int]) -> nn.Module:
        """Check the metadata (:meth:`check`), then make ``model`` (built from the config, on
        the CPU) run its network with this graph; returns it. ``model.onnx_backend`` is set."""
        self.check(model, names, channels)
        model.backbone = nn.Identity()
        if getattr(model, 'neck', None) is not None:
            model.neck = nn.Identity()
        head = model.panoptic_head
        if hasattr(head, 'forward_tasks'):  # PMTSeg heads: every prompt in one call
            head.forward_tasks = self.forward_tasks
        else:  # mmdet's MaskFormer heads: Mask2FormerHead.predict calls forward
            head.forward = self.forward
        model.onnx_backend = self
        return model

    def run(self, inputs: Tensor, names: Sequence[str]) -> List[Tensor]:
        """The graph outputs ``names`` of the normalised batch ``inputs`` (B, ΣC, H, W): one
        session call for the batch if the graph's batch axis is dynamic, else one per window."""
        self.check_window(inputs.shape[-2:])
        array = inputs.detach().cpu().float().numpy()
        step = len(array) if self.dynamic_batch else 1
        outs = [self.session.run(list(names), {INPUT_NAME: array[i:i + step]})
                for i in range(0, len(array), step)]
        return [torch.from_numpy(np.concatenate(per_name)) for per_name in zip(*outs)]

    def forward_tasks(self, x: Tensor, batch_data_samples: SampleList,
                      tasks: Sequence[str]) -> Tuple[List[Tensor], List[Tensor]]:
        """``PSHHead.forward_tasks`` from the graph: last-layer class (B, T, N, C + 1) and mask
        logits (B, T, N, H/4, W/4) of the prompts ``tasks`` (one pass for an unconditioned
        head)."""
        if not self.meta['task_conditioned']:
            cls, masks = self.run(x, ('cls', 'masks'))
            return [cls[:, None]], [masks[:, None]]
        missing = [t for t in tasks if t not in self.meta['tasks']]
        if missing:
            raise self._mismatch('tasks', list(tasks), 'the tasks asked for')
        outs = self.run(x, [f'{t}_{kind}' for t in tasks for kind in ('cls', 'masks')])
        return [torch.stack(outs[0::2], dim=1)], [torch.stack(outs[1::2], dim=1)]

    def forward(self, x: Tensor, batch_data_samples: SampleList) -> Tuple[List[Tensor],
                                                                          List[Tensor]]:
        """mmdet ``Mask2FormerHead.forward`` from the graph: last-layer class and mask logits."""
        cls, masks = self.run(x, ('cls', 'masks'))
        return [cls], [masks]
