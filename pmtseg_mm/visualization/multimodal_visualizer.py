"""Side-by-side pictures of multimodal inputs and the three predictions of one sample."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.registry import HOOKS
from mmdet.structures import DetDataSample
from mmengine.hooks import Hook

from ..datasets.transforms import read_raster
from ..structures import colour_modality

_TITLE_H = 18


def stretch_to_uint8(array: np.ndarray, low: float = 2, high: float = 98) -> np.ndarray:
    """Percentile-stretch each channel to 0..255 (robust for 16-bit, float, SAR dB)."""
    array = array.astype(np.float32)
    out = np.empty(array.shape, np.uint8)
    for c in range(array.shape[2]):
        lo, hi = np.nanpercentile(array[..., c], (low, high))
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        out[..., c] = np.clip((array[..., c] - lo) * scale, 0, 255).astype(np.uint8)
    return out


def render_modality(array: np.ndarray, bgr: bool) -> np.ndarray:
    """RGB picture of one modality: colour for 3 bands, viridis for 1 band, first 3 otherwise."""
    if array.dtype == np.uint8 and array.shape[2] >= 3:
        img = array[..., :3]
    else:
        img = stretch_to_uint8(array[..., :3] if array.shape[2] >= 3 else array[..., :1])
    if img.shape[2] == 1:
        return cv2.applyColorMap(img[..., 0], cv2.COLORMAP_VIRIDIS)[..., ::-1]
    return img[..., ::-1] if bgr else img


def colorize_labels(labels: np.ndarray, palette: Sequence[Tuple[int, int, int]]) -> np.ndarray:
    """Class-id map -> RGB with the dataset palette; ids outside it (void, 255) are black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[:len(palette)] = np.asarray(palette, np.uint8)
    return lut[np.clip(labels, 0, 255).astype(np.int64)]


def _boundaries(ids: np.ndarray) -> np.ndarray:
    edge = np.zeros(ids.shape, bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    return edge


def colorize_panoptic(pan: np.ndarray, num_classes: int,
                      palette: Sequence[Tuple[int, int, int]]) -> np.ndarray:
    """mmdet panoptic encoding (label + instance * INSTANCE_OFFSET) -> RGB; instances of a class
    get shades of its colour and every segment a white outline."""
    labels = pan % INSTANCE_OFFSET
    out = colorize_labels(np.where(labels == num_classes, 255, labels), palette).astype(np.float32)
    instance = pan // INSTANCE_OFFSET
    shade = 0.6 + 0.4 * ((instance * 37) % 11) / 10.0
    out = np.where((instance > 0)[..., None], out * shade[..., None], out)
    out[_boundaries(pan)] = 255
    return out.astype(np.uint8)


def overlay_instances(base: np.ndarray, masks: np.ndarray, labels: np.ndarray,
                      palette: Sequence[Tuple[int, int, int]]) -> np.ndarray:
    """Blend instance masks (N, H, W) over a dimmed base picture, outlined in white."""
    out = base.astype(np.float32) * 0.5
    ids = np.zeros(base.shape[:2], np.int64)
    for i, (mask, label) in enumerate(zip(masks, labels), start=1):
        colour = np.asarray(palette[int(label) % len(palette)], np.float32)
        jitter = 0.7 + 0.3 * ((i * 53) % 7) / 6.0
        out[mask] = 0.35 * out[mask] + 0.65 * colour * jitter
        ids[mask] = i
    out[_boundaries(ids)] = 255
    return out.astype(np.uint8)


def _titled(img: np.ndarray, title: str) -> np.ndarray:
    bar = np.full((_TITLE_H, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, title, (3, _TITLE_H - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([bar, img], axis=0)


def draw_multimodal_prediction(modalities: Dict[str, np.ndarray], data_sample: DetDataSample,
                               metainfo: dict, score_thr: float = 0.3) -> np.ndarray:
    """One RGB row: each modality | ground-truth semantic | predicted semantic | instance |
    panoptic (panels the sample has). ``modalities`` maps names to (H, W, C) arrays at the
    original size; the first with three channels is shown in colour (cv2's BGR order, as
    decoded from PNG/JPG; :func:`pmtseg_mm.structures.colour_modality`)."""
    palette = metainfo['palette']
    num_classes = len(metainfo['classes'])
    colour = colour_modality(list(modalities),
                             [a.shape[2] if a.ndim == 3 else 1 for a in modalities.values()])
    panels: List[Tuple[np.ndarray, str]] = [
        (render_modality(array, bgr=name == colour), name) for name, array in modalities.items()
    ]
    base = panels[0][0]
    h, w = base.shape[:2]
    if 'gt_sem_seg' in data_sample:
        gt = data_sample.gt_sem_seg.sem_seg[0].cpu().numpy().astype(np.uint8)
        gt = cv2.resize(gt[:data_sample.img_shape[0], :data_sample.img_shape[1]], (w, h),
                        interpolation=cv2.INTER_NEAREST)
        panels.append((colorize_labels(gt, palette), 'GT semantic'))
    if 'pred_sem_seg' in data_sample:
        sem = data_sample.pred_sem_seg.sem_seg[0].cpu().numpy()
        panels.append((colorize_labels(sem, palette), 'semantic'))
    if 'pred_instances' in data_sample and 'masks' in data_sample.pred_instances:
        inst = data_sample.pred_instances
        keep = (inst.scores >= score_thr).cpu().numpy()
        panels.append((overlay_instances(base, inst.masks.cpu().numpy()[keep].astype(bool),
                                         inst.labels.cpu().numpy()[keep], palette), 'instance'))
    if 'pred_panoptic_seg' in data_sample:
        pan = data_sample.pred_panoptic_seg.sem_seg[0].cpu().numpy()
        panels.append((colorize_panoptic(pan, num_classes, palette), 'panoptic'))
    gap = np.full((h + _TITLE_H, 4, 3), 255, np.uint8)
    row: List[np.ndarray] = []
    for img, title in panels:
        if img.shape[:2] != (h, w):
            img = cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST)
        row += [_titled(img, title), gap]
    return np.concatenate(row[:-1], axis=1)


@HOOKS.register_module()
class MultiModalVisualizationHook(Hook):
    """Save :func:`draw_multimodal_prediction` pictures of the first ``num_samples`` test
    samples to ``out_dir`` (needs ``modality_paths`` in the test pipeline's meta_keys)."""

    def __init__(self, out_dir: str, num_samples: int = 4, score_thr: float = 0.3) -> None:
        self.out_dir = out_dir
        self.num_samples = num_samples
        self.score_thr = score_thr
        self._saved = 0
        self.saved_files: List[str] = []

    def _save(self, runner, outputs: Sequence[DetDataSample]) -> None:
        metainfo = runner.test_dataloader.dataset.metainfo if runner.test_loop is not None \
            else runner.val_dataloader.dataset.metainfo
        for sample in outputs:
            if self._saved >= self.num_samples:
                return
            paths: Optional[dict] = sample.metainfo.get('modality_paths')
            if paths is None:
                raise KeyError('MultiModalVisualizationHook needs `modality_paths` in the '
                               "test pipeline's PackDetInputs meta_keys")
            names = sample.metainfo.get('modalities', tuple(paths))
            arrays = {name: read_raster(paths[name]) for name in names}
            picture = draw_multimodal_prediction(arrays, sample, metainfo, self.score_thr)
            os.makedirs(self.out_dir, exist_ok=True)
            out = osp.join(self.out_dir, osp.splitext(osp.basename(sample.img_path))[0] + '.png')
            mmcv.imwrite(picture[..., ::-1], out)
            self.saved_files.append(out)
            self._saved += 1

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self._save(runner, outputs)
