"""MultiModalInferencer: predictions for co-registered modality inputs (paths or arrays)."""
import argparse
import json
import os
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import mmcv
import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import DATASETS
from mmdet.structures import DetDataSample
from mmengine.config import Config, ConfigDict
from mmengine.dataset import Compose, pseudo_collate
from mmengine.infer import BaseInferencer
from mmengine.registry import FUNCTIONS, init_default_scope
from mmengine.utils import ProgressBar
from pycocotools import mask as mask_utils

import pmtseg_mm  # noqa: F401  (registers the components)
from pmtseg_mm.deployment.onnx_backend import OnnxRuntimeBackend
from pmtseg_mm.models.detectors import PMTSeg
from pmtseg_mm.structures import check_tasks
from pmtseg_mm.visualization import draw_multimodal_prediction
from .inputs import ModalityInput, ModalitySpec, as_config, optional_list

InputDict = Mapping[str, ModalityInput]
#: network backends: the model's PyTorch modules, or an exported graph run by onnxruntime
BACKENDS = ('pytorch', 'onnxruntime')


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--onnx`` and ``--threads`` of the demos (the inferencer's ``backend``,
    ``onnx`` and ``onnx_threads``)."""
    parser.add_argument('--backend', choices=BACKENDS, default='pytorch',
                        help='network backend: the PyTorch model, or onnxruntime running --onnx '
                        '(same pre- and post-processing; docs/deployment.md)')
    parser.add_argument('--onnx', help='graph exported by tools/deployment/pytorch2onnx.py '
                        '(--backend onnxruntime)')
    parser.add_argument('--threads', type=int, default=None,
                        help='onnxruntime intra-op threads (--backend onnxruntime)')


class MultiModalInferencer(BaseInferencer):
    """Inference with a multimodal model (PMTSeg or a Mask2Former baseline) from a config and
    a checkpoint, in the style of mmdet's ``DetInferencer``.

    Example::

        inferencer = MultiModalInferencer('configs/pmtseg/pmtseg_r18-tiny_...py', 'iter_300.pth')
        out = inferencer(dict(optical='a.png', depth='a.tif'), tasks=('semantic', 'panoptic'))
        out['predictions'][0]['semantic']            # (H, W) class ids
        inferencer(dict(optical=rgb_array), missing=('depth',))   # the DSM does not exist

    Args:
        model (str | Config): Config path, config name (file stem under ``configs/``) or Config.
        weights (str, optional): Checkpoint. None keeps random weights (with a warning).
        device (str, optional): Device; None picks CUDA when available.
        palette (Sequence, optional): Colours for pictures; default from the checkpoint's
            ``dataset_meta`` or the config's dataset class.
        backend (str): 'pytorch', or 'onnxruntime': the network is the exported graph ``onnx``
            (tools/deployment/pytorch2onnx.py of this config) on the CPU, pre- and
            post-processing are the PyTorch path's (:class:`OnnxRuntimeBackend`); a graph
            whose metadata does not match the config's inputs is refused.
        onnx (str, optional): The ``.onnx`` file of the onnxruntime backend (no ``weights``).
        onnx_threads (int, optional): onnxruntime intra-op threads.
    """

    preprocess_kwargs: set = {'missing'}
    forward_kwargs: set = {'tasks'}
    visualize_kwargs: set = {'return_vis', 'score_thr', 'vis_dir'}
    postprocess_kwargs: set = {'pred_dir'}

    def __init__(self,
                 model: Union[str, Config, ConfigDict, dict],
                 weights: Optional[str] = None,
                 device: Optional[str] = None,
                 palette: Optional[Sequence] = None,
                 backend: str = 'pytorch',
                 onnx: Optional[str] = None,
                 onnx_threads: Optional[int] = None) -> None:
        init_default_scope('mmdet')
        self._checkpoint_meta: Optional[dict] = None
        self.onnx_backend = self._onnx_backend(backend, onnx, onnx_threads, weights, device)
        if self.onnx_backend is not None:
            device = 'cpu'
        super().__init__(model=as_config(model), weights=weights, device=device, scope='mmdet')
        self.spec = ModalitySpec(self.cfg)
        self.dataset_meta = self._dataset_meta(palette)

    @staticmethod
    def _onnx_backend(backend: str, onnx: Optional[str], threads: Optional[int],
                      weights: Optional[str], device: Optional[str]
                      ) -> Optional[OnnxRuntimeBackend]:
        """The onnxruntime backend of ``onnx`` (None for 'pytorch'); refuses contradicting
        options."""
        if backend not in BACKENDS:
            raise ValueError(f'backend (--backend) must be one of {BACKENDS}, got {backend!r}')
        if backend == 'pytorch':
            if onnx is not None:
                raise ValueError('onnx (--onnx) is for backend onnxruntime (--backend '
                                 'onnxruntime); the pytorch backend takes weights (--weights)')
            return None
        if onnx is None:
            raise ValueError('backend onnxruntime needs the exported graph: onnx (--onnx)')
        if weights is not None:
            raise ValueError('weights (--weights) with backend onnxruntime: the weights are '
                             'those of the onnx (--onnx) file')
        if device not in (None, 'cpu'):
            raise ValueError(f'backend onnxruntime runs on the CPU, got device (--device) '
                             f'{device!r}')
        return OnnxRuntimeBackend(onnx, threads)

    # --- BaseInferencer hooks -------------------------------------------------------------
    def _load_weights_to_model(self, model: torch.nn.Module, checkpoint: Optional[dict],
                               cfg: Optional[Config]) -> None:
        if self.onnx_backend is not None:
            spec = ModalitySpec(cfg)
            self.onnx_backend.attach(model, spec.names, spec.channels)
            return
        if checkpoint is not None:
            self._checkpoint_meta = checkpoint.get('meta', {}).get('dataset_meta')
        super()._load_weights_to_model(model, checkpoint, cfg)

    def _init_pipeline(self, cfg: Config) -> Compose:
        """The config's test pipeline after loading (resize, packing); loading is done by
        :class:`ModalitySpec` for paths and arrays alike."""
        return Compose(ModalitySpec(cfg).transforms)

    def _init_collate(self, cfg: Config):
        """``test_dataloader.collate_fn`` when the config sets one, else pseudo_collate."""
        collate = cfg.get('test_dataloader', {}).get('collate_fn')
        if collate is None:
            return pseudo_collate
        return FUNCTIONS.build(collate) if isinstance(collate, dict) else collate

    def _init_visualizer(self, cfg: Config) -> None:
        return None  # pictures come from draw_multimodal_prediction (all modalities)

    def _dataset_meta(self, palette: Optional[Sequence]) -> dict:
        meta = dict(self._checkpoint_meta or {})
        if not meta.get('classes'):
            dataset_type = self.cfg.test_dataloader.dataset.get('type')
            dataset_cls = DATASETS.get(dataset_type) if dataset_type else None
            meta = dict(getattr(dataset_cls, 'METAINFO', {}) or {})
        if not meta.get('classes'):
            names = self.cfg.model.get('panoptic_head', {}).get('class_names')
            if not names:
                raise KeyError('no class names: the checkpoint has no `meta.dataset_meta` and '
                               'the config neither a dataset type with METAINFO nor '
                               '`model.panoptic_head.class_names`')
            meta['classes'] = tuple(names)
        if palette is not None:
            meta['palette'] = [tuple(c) for c in palette]
        if len(meta.get('palette') or ()) < len(meta['classes']):
            rng = np.random.RandomState(0)
            meta['palette'] = [tuple(int(v) for v in rng.randint(0, 256, 3))
                               for _ in meta['classes']]
        return meta

    # --- the call -------------------------------------------------------------------------
    def __call__(self,
                 inputs: Union[InputDict, Sequence[InputDict]],
                 tasks: Optional[Sequence[str]] = None,
                 missing: Sequence[str] = (),
                 batch_size: int = 1,
                 return_vis: bool = False,
                 score_thr: float = 0.3,
                 out_dir: str = '',
                 return_datasamples: bool = False,
                 show_progress: bool = False) -> dict:
        """Predict one input or a list of inputs.

        Args:
            inputs: ``dict(modality=path or array)`` or a list of them; arrays are (H, W) or
                (H, W, C) in the file's band order (BGR for colour images, as cv2 decodes).
            tasks: Tasks to predict (PMTSeg: any of 'semantic', 'instance', 'panoptic'; one
                head pass each). None = the config's ``test_cfg.tasks``.
            missing: Modalities declared missing (the sensor does not exist for these inputs):
                filled as :class:`ModalityDropout` does in training.
            batch_size: Inputs per forward pass.
            return_vis: Return the pictures (RGB arrays) under ``visualization``.
            score_thr: Instance score threshold for pictures.
            out_dir: When set, write ``vis/<name>.png`` pictures and ``preds/<name>_*.png``,
                ``preds/<name>.json`` prediction files there.
            return_datasamples: Return :class:`DetDataSample` objects instead of dicts.
            show_progress: Show a progress bar.

        Returns:
            dict: ``predictions`` (list, one per input) and ``visualization`` (list of RGB
            pictures, empty unless ``return_vis`` or ``out_dir``).
        """
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        items = [inputs] if isinstance(inputs, Mapping) else list(inputs)
        if not items:
            raise ValueError('no inputs given')
        missing = self.spec.check_missing(optional_list(missing))
        vis_dir = osp.join(out_dir, 'vis') if out_dir else ''
        pred_dir = osp.join(out_dir, 'preds') if out_dir else ''
        preds: List[DetDataSample] = []
        shown: List[Dict[str, np.ndarray]] = []
        progress = ProgressBar(len(items)) if show_progress else None
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            data, arrays = self.preprocess_chunk(chunk, start, missing)
            preds.extend(self.forward(data, tasks=tasks))
            shown.extend(arrays)
            if progress is not None:
                for _ in chunk:
                    progress.update()
        visualization = self.visualize(shown, preds, return_vis=return_vis or bool(vis_dir),
                                       score_thr=score_thr, vis_dir=vis_dir)
        return self.postprocess(preds, visualization, return_datasamples, pred_dir=pred_dir)

    def preprocess_chunk(self, chunk: Sequence[InputDict], offset: int,
                         missing: Sequence[str]) -> tuple:
        """Load, check and collate a chunk of inputs; also returns the per-modality arrays."""
        samples, arrays = [], []
        for i, item in enumerate(chunk):
            img, per_modality, paths = self.spec.load(item, missing)
            filled = self.spec.split(img)
            for name in missing:  # pictures show the filled (flat) channels of a missing one
                per_modality[name] = filled[name]
            arrays.append({n: per_modality[n] for n in self.spec.names})
            samples.append(self.pipeline(self.spec.results(img, paths, offset + i, missing)))
        return self.collate_fn(samples), arrays

    @torch.no_grad()
    def forward(self, inputs: dict, tasks: Optional[Sequence[str]] = None) -> List[DetDataSample]:
        """The model's ``predict`` on a collated chunk; ``tasks`` (PMTSeg only) replaces
        ``test_cfg.tasks`` for this call."""
        if tasks is None:
            return self.model.test_step(inputs)
        tasks = check_tasks(optional_list(tasks))
        if not isinstance(self.model, PMTSeg):
            raise ValueError(f'tasks={tasks!r}: choosing tasks per call needs a PMTSeg model; '
                             f'{type(self.model).__name__} predicts its test_cfg *_on tasks')
        data = self.model.data_preprocessor(inputs, False)
        return self.model.predict(data['inputs'], data['data_samples'], tasks=tasks)

    def visualize(self, inputs: List[Dict[str, np.ndarray]], preds: List[DetDataSample],
                  return_vis: bool = False, score_thr: float = 0.3, vis_dir: str = '',
                  **kwargs) -> List[np.ndarray]:
        """One RGB picture per input: modalities | semantic | instance | panoptic."""
        if not return_vis and not vis_dir:
            return []
        pictures = []
        for arrays, pred in zip(inputs, preds):
            picture = draw_multimodal_prediction(arrays, pred, self.dataset_meta, score_thr)
            pictures.append(picture)
            if vis_dir:
                os.makedirs(vis_dir, exist_ok=True)
                mmcv.imwrite(picture[..., ::-1], osp.join(vis_dir, self._name(pred) + '.png'))
        return pictures

    def postprocess(self, preds: List[DetDataSample], visualization: List[np.ndarray],
                    return_datasample: bool = False, pred_dir: str = '', **kwargs) -> dict:
        """Predictions as dicts of numpy arrays (or the data samples); files when ``pred_dir``."""
        results = [self.pred_to_dict(p) for p in preds]
        if pred_dir:
            for pred, result in zip(preds, results):
                self.save_prediction(result, pred_dir, self._name(pred))
        return dict(predictions=preds if return_datasample else results,
                    visualization=visualization)

    # --- helpers --------------------------------------------------------------------------
    @staticmethod
    def _name(pred: DetDataSample) -> str:
        return osp.splitext(osp.basename(pred.metainfo.get('img_path', 'input')))[0]

    @staticmethod
    def pred_to_dict(pred: DetDataSample) -> Dict[str, Any]:
        """``semantic`` (H, W) int64 class ids, ``instances`` (``labels``, ``scores``,
        ``bboxes`` (N, 4) xyxy, ``masks`` (N, H, W) bool) and ``panoptic`` (H, W) in mmdet's
        encoding (class + instance id * INSTANCE_OFFSET), for the predicted tasks."""
        out: Dict[str, Any] = {}
        if 'pred_sem_seg' in pred:
            out['semantic'] = pred.pred_sem_seg.sem_seg[0].cpu().numpy().astype(np.int64)
        if 'pred_instances' in pred:
            inst = pred.pred_instances
            out['instances'] = dict(
                labels=inst.labels.cpu().numpy(), scores=inst.scores.cpu().numpy(),
                bboxes=inst.bboxes.cpu().numpy() if 'bboxes' in inst else np.zeros((0, 4)),
                masks=inst.masks.cpu().numpy().astype(bool) if 'masks' in inst else None)
        if 'pred_panoptic_seg' in pred:
            out['panoptic'] = pred.pred_panoptic_seg.sem_seg[0].cpu().numpy().astype(np.int64)
        return out

    def save_prediction(self, result: Dict[str, Any], pred_dir: str, name: str) -> List[str]:
        """Write ``<name>_semantic.png`` (uint8 class ids), ``<name>_panoptic.png`` (COCO RGB id
        encoding) and ``<name>.json`` (classes, instances with RLE masks, panoptic segments)."""
        os.makedirs(pred_dir, exist_ok=True)
        written = []
        record: Dict[str, Any] = dict(classes=list(self.dataset_meta['classes']))
        if 'semantic' in result:
            path = osp.join(pred_dir, f'{name}_semantic.png')
            mmcv.imwrite(np.clip(result['semantic'], 0, 255).astype(np.uint8), path)
            written.append(path)
        if 'instances' in result:
            inst = result['instances']
            items = []
            for i in range(len(inst['labels'])):
                item = dict(label=int(inst['labels'][i]), score=float(inst['scores'][i]),
                            bbox=[float(v) for v in inst['bboxes'][i]])
                if inst['masks'] is not None:
                    rle = mask_utils.encode(np.asfortranarray(inst['masks'][i].astype(np.uint8)))
                    item['mask'] = dict(size=rle['size'], counts=rle['counts'].decode())
                items.append(item)
            record['instances'] = items
        if 'panoptic' in result:
            pan = result['panoptic']
            num_classes = len(self.dataset_meta['classes'])
            ids = np.unique(pan)
            segments = []
            for seg_id in ids:
                label = int(seg_id % INSTANCE_OFFSET)
                if label >= num_classes:
                    continue  # void
                segments.append(dict(id=int(seg_id), category_id=label,
                                     isthing=bool(seg_id // INSTANCE_OFFSET > 0),
                                     area=int((pan == seg_id).sum())))
            record['panoptic_segments'] = segments
            rgb = np.zeros(pan.shape + (3, ), np.uint8)
            for s in segments:  # COCO panoptic id -> RGB (id = R + 256 G + 256^2 B)
                m = pan == s['id']
                rgb[m] = (s['id'] % 256, s['id'] // 256 % 256, s['id'] // 65536 % 256)
            path = osp.join(pred_dir, f'{name}_panoptic.png')
            mmcv.imwrite(rgb[..., ::-1], path)
            written.append(path)
        path = osp.join(pred_dir, f'{name}.json')
        with open(path, 'w') as f:
            json.dump(record, f)
        written.append(path)
        return written
