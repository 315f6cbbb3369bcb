"""Whole-scene inference on co-registered GeoTIFFs: windowed reading, overlapping windows,
centre-weighted blending of semantic scores, instances joined across window borders,
georeferenced rasters and GeoJSON polygons.

Memory is bounded by the block size, not the scene: the scene is processed in blocks of
``block_size`` pixels; each block accumulates the scores of every window of one global window
grid that touches it (so block borders are seamless), writes its part of the semantic raster and
keeps only the thing instances (cropped to their boxes). A second pass writes the panoptic raster
block by block from the semantic raster and the joined instances.
"""
import json
import math
import os
import os.path as osp
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from tqdm import tqdm

from pmtseg_mm.datasets.transforms.modality_dropout import blank_modalities
from .inputs import ModalitySpec, optional_list

try:  # rasterio (GDAL) is a runtime requirement; imported lazily so the package imports without
    import rasterio
    from rasterio import features as rio_features
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window
except ImportError:  # pragma: no cover
    rasterio = None


def _need_rasterio() -> None:
    if rasterio is None:
        raise ImportError('whole-scene inference needs rasterio: pip install "rasterio>=1.4,<1.5"')


# --- window grid and weights ---------------------------------------------------------------
def window_starts(length: int, size: int, overlap: int) -> List[int]:
    """Start offsets of windows of ``size`` covering ``[0, length)`` with at least ``overlap``
    pixels shared by neighbours; the last window is aligned to the end."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f'window size must be > 0 and 0 <= overlap < size, got size={size}, '
                         f'overlap={overlap}')
    if length <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def centre_weights(height: int, width: int) -> np.ndarray:
    """(H, W) blending weights: a separable tent, 1 at the window centre, small (not 0) at its
    borders, so overlapping windows are blended towards their centres."""

    def tent(n: int) -> np.ndarray:
        i = np.arange(n, dtype=np.float32) + 0.5
        return np.clip(np.minimum(i, n - i) / (n / 2.0), 1e-3, 1.0)

    return np.outer(tent(height), tent(width)).astype(np.float32)


@dataclass
class WindowGrid:
    """One global grid of windows over a scene (``ys``/``xs`` start offsets)."""
    height: int
    width: int
    size: int
    overlap: int
    ys: List[int] = field(init=False)
    xs: List[int] = field(init=False)

    def __post_init__(self) -> None:
        self.ys = window_starts(self.height, self.size, self.overlap)
        self.xs = window_starts(self.width, self.size, self.overlap)
        self.win_h = min(self.size, self.height)
        self.win_w = min(self.size, self.width)
        self.weights = centre_weights(self.win_h, self.win_w)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def box(self, row: int, col: int) -> Tuple[int, int, int, int]:
        """(y0, x0, y1, x1) of window (row, col)."""
        return self.ys[row], self.xs[col], self.ys[row] + self.win_h, self.xs[col] + self.win_w

    def touching(self, y0: int, x0: int, y1: int, x1: int) -> List[Tuple[int, int]]:
        """Windows intersecting the region [y0, y1) x [x0, x1)."""
        rows = [r for r, y in enumerate(self.ys) if y < y1 and y + self.win_h > y0]
        cols = [c for c, x in enumerate(self.xs) if x < x1 and x + self.win_w > x0]
        return [(r, c) for r in rows for c in cols]


# --- instances and their joining across window borders -------------------------------------
@dataclass
class WindowInstance:
    """A thing predicted in one window, its mask cropped to its box (scene pixel coords)."""
    label: int
    score: float
    window: Tuple[int, int, int, int]  # (y0, x0, y1, x1) of the window that predicted it
    box: Tuple[int, int, int, int]  # (y0, x0, y1, x1), exclusive ends
    mask: np.ndarray  # bool (y1 - y0, x1 - x0)

    @classmethod
    def from_window_mask(cls, label: int, score: float, window: Tuple[int, int, int, int],
                         mask: np.ndarray) -> Optional['WindowInstance']:
        """From a full-window mask; None when the mask is empty."""
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        if not len(rows):
            return None
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        y, x = window[:2]
        return cls(int(label), float(score), tuple(window), (y + r0, x + c0, y + r1, x + c1),
                   np.ascontiguousarray(mask[r0:r1, c0:c1]))

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class SceneInstance:
    """A thing of the scene after joining; ``members`` counts the window predictions joined."""
    label: int
    score: float
    box: Tuple[int, int, int, int]
    mask: np.ndarray
    members: int = 1

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def _intersect(a: Tuple[int, ...], b: Tuple[int, ...]) -> Optional[Tuple[int, int, int, int]]:
    y0, x0, y1, x1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (y0, x0, y1, x1) if y0 < y1 and x0 < x1 else None


def _crop(inst, region: Tuple[int, int, int, int]) -> np.ndarray:
    """The instance mask over ``region`` (zeros where its box does not reach)."""
    out = np.zeros((region[2] - region[0], region[3] - region[1]), bool)
    inter = _intersect(inst.box, region)
    if inter is not None:
        y0, x0, y1, x1 = inter
        out[y0 - region[0]:y1 - region[0], x0 - region[1]:x1 - region[1]] = \
            inst.mask[y0 - inst.box[0]:y1 - inst.box[0], x0 - inst.box[1]:x1 - inst.box[1]]
    return out


def suppress_duplicates(instances: Sequence[WindowInstance],
                        iou_thr: float = 0.5) -> List[WindowInstance]:
    """Within one window: keep the highest-scoring of instances whose masks overlap by IoU >=
    ``iou_thr`` (Mask2Former may give one query under several labels)."""
    kept: List[WindowInstance] = []
    for inst in sorted(instances, key=lambda i: -i.score):
        duplicate = False
        for other in kept:
            inter = _intersect(inst.box, other.box)
            if inter is None:
                continue
            both = int((_crop(inst, inter) & _crop(other, inter)).sum())
            if both / max(inst.area + other.area - both, 1) >= iou_thr:
                duplicate = True
                break
        if not duplicate:
            kept.append(inst)
    return kept


def _same_object(a: WindowInstance, b: WindowInstance, iou_thr: float) -> bool:
    """Same label and mask IoU >= ``iou_thr`` inside the region both windows saw."""
    if a.label != b.label or a.window == b.window or _intersect(a.box, b.box) is None:
        return False
    shared = _intersect(a.window, b.window)
    if shared is None:
        return False
    ma, mb = _crop(a, shared), _crop(b, shared)
    inter = int((ma & mb).sum())
    union = int((ma | mb).sum())
    return union > 0 and inter / union >= iou_thr


def join_instances(instances: Sequence[WindowInstance], grid_weights: np.ndarray,
                   iou_thr: float = 0.5) -> List[SceneInstance]:
    """Join window predictions of one object cut by window borders into one scene instance.

    Two predictions from overlapping windows are the same object when they have the same label
    and their masks agree (IoU >= ``iou_thr``) inside the region both windows saw; groups are
    the connected components of that relation. A joined mask takes each pixel from the member
    whose window is most central there (``grid_weights``: the per-window blending weights), its
    score is the members' best.
    """
    n = len(instances)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_window: Dict[Tuple[int, ...], List[int]] = {}
    for i, inst in enumerate(instances):
        by_window.setdefault(inst.window, []).append(i)
    windows = list(by_window)
    for wi, wa in enumerate(windows):
        for wb in windows[wi + 1:]:
            if _intersect(wa, wb) is None:
                continue
            for i in by_window[wa]:
                for j in by_window[wb]:
                    if find(i) != find(j) and _same_object(instances[i], instances[j], iou_thr):
                        parent[find(i)] = find(j)
    groups: Dict[int, List[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    joined = []
    for members in groups.values():
        insts = [instances[i] for i in members]
        if len(insts) == 1:
            only = insts[0]
            joined.append(SceneInstance(only.label, only.score, only.box, only.mask))
            continue
        box = (min(i.box[0] for i in insts), min(i.box[1] for i in insts),
               max(i.box[2] for i in insts), max(i.box[3] for i in insts))
        best = np.zeros((box[2] - box[0], box[3] - box[1]), np.float32)
        mask = np.zeros(best.shape, bool)
        for inst in insts:
            region = _intersect(inst.window, box)
            wy, wx = region[0] - inst.window[0], region[1] - inst.window[1]
            weight = grid_weights[wy:wy + region[2] - region[0], wx:wx + region[3] - region[1]]
            sl = (slice(region[0] - box[0], region[2] - box[0]),
                  slice(region[1] - box[1], region[3] - box[1]))
            better = weight > best[sl]
            best[sl] = np.where(better, weight, best[sl])
            mask[sl] = np.where(better, _crop(inst, region), mask[sl])
        if mask.any():
            joined.append(SceneInstance(insts[0].label, max(i.score for i in insts), box, mask,
                                        members=len(insts)))
    return joined


# --- reading co-registered scenes ----------------------------------------------------------
def _describe(ds) -> str:
    crs = ds.crs.to_string() if ds.crs else 'no CRS'
    t = ds.transform
    return (f'CRS {crs}, transform (x0={t.c:.6g}, dx={t.a:.6g}, rx={t.b:.6g}, y0={t.f:.6g}, '
            f'ry={t.d:.6g}, dy={t.e:.6g}), size {ds.width}x{ds.height} (WxH)')


def _same_grid(a, b) -> bool:
    if a.width != b.width or a.height != b.height or (a.crs is None) != (b.crs is None):
        return False
    if a.crs is not None and a.crs != b.crs:
        return False
    pixel = min(abs(a.transform.a), abs(a.transform.e)) or 1.0
    return all(math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-3 * pixel)
               for u, v in zip(tuple(a.transform)[:6], tuple(b.transform)[:6]))


class SceneReader:
    """Co-registered modality rasters of one scene, read window by window.

    The first given modality is the reference grid. Every other one must share its CRS,
    geotransform and size (a clear error names both files otherwise) unless ``resample`` is
    set, in which case it is reprojected onto the reference grid on the fly (bilinear,
    GDAL's WarpedVRT). Modalities in ``missing`` are filled as in training (ModalityDropout).
    """

    def __init__(self, paths: Mapping[str, str], spec: ModalitySpec,
                 missing: Sequence[str] = (), resample: bool = False) -> None:
        _need_rasterio()
        self.spec = spec
        self.missing = spec.check_missing(optional_list(missing))
        unknown = sorted(set(paths) - set(spec.names))
        if unknown:
            raise ValueError(f'scene modalities {unknown} are not in the config (it expects '
                             f'{list(spec.names)})')
        both = [m for m in self.missing if m in paths]
        if both:
            raise ValueError(f'modalities {both} are declared missing but were also given')
        absent = [n for n in spec.names if n not in paths and n not in self.missing]
        if absent:
            raise ValueError(f'no raster for modalities {absent}; give them or declare them '
                             f'missing (--missing {" ".join(absent)})')
        for name, path in paths.items():
            if not osp.isfile(path):
                raise FileNotFoundError(f"raster of modality '{name}' not found: {path}")
        self.paths = {n: paths[n] for n in spec.names if n in paths}
        self._stack = ExitStack()
        self.datasets = {}
        try:
            for name, path in self.paths.items():
                try:
                    self.datasets[name] = self._stack.enter_context(rasterio.open(path))
                except rasterio.errors.RasterioIOError as err:
                    raise ValueError(f"cannot read raster of modality '{name}' {path}: {err}") \
                        from None
            self._check_grids(resample)
            self._check_bands()
        except BaseException:
            self._stack.close()
            raise

    def _check_grids(self, resample: bool) -> None:
        names = list(self.datasets)
        self.reference = names[0]
        ref = self.datasets[self.reference]
        for name in names[1:]:
            ds = self.datasets[name]
            if _same_grid(ref, ds):
                continue
            if not resample:
                raise ValueError(
                    'scene modalities disagree in georeferencing: '
                    f"'{self.reference}' {self.paths[self.reference]} has {_describe(ref)} but "
                    f"'{name}' {self.paths[name]} has {_describe(ds)}; co-registered modalities "
                    'must share CRS, geotransform and size (resample them onto one grid, or '
                    f"pass resample=True / --resample to reproject '{name}' onto the "
                    f"'{self.reference}' grid)")
            if ref.crs is None or ds.crs is None:
                raise ValueError(f"cannot resample '{name}' {self.paths[name]} onto "
                                 f"{self.paths[self.reference]}: both need a CRS to be "
                                 'reprojected')
            self.datasets[name] = self._stack.enter_context(WarpedVRT(
                ds, crs=ref.crs, transform=ref.transform, width=ref.width, height=ref.height,
                resampling=rasterio.enums.Resampling.bilinear))
        self.height, self.width = ref.height, ref.width
        self.crs, self.transform = ref.crs, ref.transform

    def _check_bands(self) -> None:
        self.bands = {}
        for name, ds in self.datasets.items():
            opts = self.spec.options[name]
            bands = list(opts.get('bands') or range(ds.count))
            if any(not -ds.count <= b < ds.count for b in bands):
                raise ValueError(f"`modalities.{name}.bands`={bands} of the config selects bands "
                                 f'that {self.paths[name]} ({ds.count} band(s)) lacks')
            bands = [b % ds.count + 1 for b in bands]
            expected = self.spec.channels[self.spec.names.index(name)]
            if len(bands) != expected:
                raise ValueError(f"'{name}' raster {self.paths[name]} gives {len(bands)} band(s) "
                                 f'but the config expects {expected} '
                                 '(`model.data_preprocessor.modality_channels`)')
            self.bands[name] = bands

    def read(self, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
        """The stacked float32 (h, w, ΣC) image of a window, in the config's channel order."""
        window = Window(x0, y0, x1 - x0, y1 - y0)
        img = np.zeros((y1 - y0, x1 - x0, sum(self.spec.channels)), np.float32)
        start = 0
        for name, c in zip(self.spec.names, self.spec.channels):
            if name in self.datasets:
                data = self.datasets[name].read(self.bands[name], window=window)
                data = np.moveaxis(data, 0, -1).astype(np.float32)
                if not np.isfinite(data).all():
                    opts = self.spec.options[name]
                    if opts.get('nan_value') is None or opts.get('inf_value') is None:
                        raise ValueError(
                            f"'{name}' raster {self.paths[name]} has NaN/Inf pixels in window "
                            f'(x={x0}, y={y0}, w={x1 - x0}, h={y1 - y0}); set '
                            f'`modalities.{name}.nan_value`/`inf_value` in the config')
                    inf = opts['inf_value']
                    neg, pos = (inf, inf) if np.isscalar(inf) else tuple(inf)
                    data = np.nan_to_num(data, nan=float(opts['nan_value']), posinf=pos,
                                         neginf=neg)
                img[..., start:start + c] = data
            start += c
        return blank_modalities(img, self.spec.names, self.spec.channels, self.missing,
                                self.spec.fill_values)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> 'SceneReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- the model on windows ------------------------------------------------------------------
def semantic_scores(mask_cls: torch.Tensor, mask_pred: torch.Tensor) -> torch.Tensor:
    """(C, H, W) class scores Σ_q softmax(cls)_qc · sigmoid(mask)_q, whose argmax is
    ``MultiTaskFusionHead.semantic_postprocess`` (MaskFormer semantic inference)."""
    return torch.einsum('qc,qhw->chw', F.softmax(mask_cls, dim=-1)[:, :-1], mask_pred.sigmoid())


@torch.no_grad()
def predict_windows(model: torch.nn.Module, images: Sequence[np.ndarray]
                    ) -> Tuple[List[np.ndarray], List[Tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Semantic scores (C, h, w) and instances (labels, scores, masks) of windows.

    One backbone/neck pass per batch and one head call with the semantic and the instance prompt
    along the batch (one prompt when the head is not task-conditioned), as ``PMTSeg.predict``
    does. Post-processing is the fusion head's, window by window: every query mask is resized
    for the semantic scores, only the queries that can survive the instance selection
    (``MultiTaskFusionHead.surviving_queries``) for the instances - the same results as resizing
    them all.
    """
    head, fusion = getattr(model, 'panoptic_head', None), getattr(model, 'panoptic_fusion_head',
                                                                  None)
    if head is None or fusion is None or not hasattr(model, 'test_tasks'):
        raise TypeError(f'whole-scene inference needs a PMTSeg model, got '
                        f'{type(model).__name__}')
    samples = [DetDataSample(metainfo=dict(img_shape=img.shape[:2], ori_shape=img.shape[:2],
                                           scale_factor=(1.0, 1.0))) for img in images]
    data = dict(inputs=[torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
                        for img in images], data_samples=samples)
    data = model.data_preprocessor(data, False)
    inputs, samples = data['inputs'], data['data_samples']
    x = model.extract_feat(inputs)
    # one head call for the semantic and the instance prompt (tasks along the batch)
    prompts = ('semantic', 'instance') if getattr(head, 'task_conditioned', True) else \
        model.test_tasks[:1]
    cls_preds, mask_preds = head.forward_tasks(x, samples, prompts)
    sem_cls, sem_pred = cls_preds[-1][:, 0], mask_preds[-1][:, 0]
    ins_cls, ins_pred = cls_preds[-1][:, -1], mask_preds[-1][:, -1]
    scores, instances = [], []
    for i, sample in enumerate(samples):
        # one window at a time, to the window's size as the fusion head resizes (rescale=False)
        resize = partial(fusion.resize_masks, img_meta=sample.metainfo, rescale=False)
        scores.append(semantic_scores(sem_cls[i], resize(sem_pred[i])).cpu().numpy())
        keep = fusion.surviving_queries(ins_cls[i], 'instance')  # only these masks are upsampled
        result = fusion.instance_postprocess(ins_cls[i][keep], resize(ins_pred[i][keep]))
        instances.append((result.labels.cpu().numpy(), result.scores.cpu().numpy(),
                          result.masks.cpu().numpy().astype(bool)))
    return scores, instances


# --- writing -------------------------------------------------------------------------------
def _raster_profile(reader: SceneReader, dtype: str, nodata) -> dict:
    tiled = reader.width >= 256 and reader.height >= 256
    profile = dict(driver='GTiff', width=reader.width, height=reader.height, count=1,
                   dtype=dtype, crs=reader.crs, transform=reader.transform, nodata=nodata,
                   compress='deflate')
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def _atomic_path(path: str) -> str:
    folder = osp.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    return f'{path}.tmp{os.getpid()}'


def instance_features(instances: Sequence[SceneInstance], reader: SceneReader,
                      classes: Sequence[str]) -> Iterator[dict]:
    """GeoJSON features (Polygon/MultiPolygon in the scene CRS) of the scene instances with
    ``id``, ``class``, ``label``, ``score``, ``area_px`` and ``area_m2`` (None when the CRS is
    not in metres)."""
    pixel_area = abs(reader.transform.a * reader.transform.e - reader.transform.b *
                     reader.transform.d)
    metres = reader.crs is not None and reader.crs.is_projected and \
        abs((reader.crs.linear_units_factor or ('', 0))[1] - 1.0) < 1e-9
    for index, inst in enumerate(instances, start=1):
        y0, x0 = inst.box[:2]
        transform = reader.transform * rasterio.Affine.translation(x0, y0)
        polygons = [geom for geom, value in rio_features.shapes(
            inst.mask.astype(np.uint8), mask=inst.mask, connectivity=4, transform=transform)
            if value == 1]
        if not polygons:
            continue
        geometry = polygons[0] if len(polygons) == 1 else dict(
            type='MultiPolygon', coordinates=[p['coordinates'] for p in polygons])
        yield dict(type='Feature', geometry=geometry, properties=dict(
            id=index, label=inst.label, **{'class': classes[inst.label]},
            score=round(inst.score, 4), area_px=inst.area,
            area_m2=round(inst.area * pixel_area, 3) if metres else None,
            windows=inst.members))


@dataclass
class SceneResult:
    """What :func:`infer_scene` wrote and measured."""
    semantic: str
    panoptic: str
    geojson: str
    num_instances: int
    windows_run: int
    windows_in_grid: int
    height: int
    width: int


def infer_scene(model: torch.nn.Module,
                spec: ModalitySpec,
                paths: Mapping[str, str],
                out_prefix: str,
                classes: Sequence[str],
                num_things: int,
                window: int = 128,
                overlap: int = 32,
                batch_size: int = 4,
                block_size: int = 1024,
                missing: Sequence[str] = (),
                resample: bool = False,
                score_thr: float = 0.5,
                min_area: int = 4,
                join_iou: float = 0.5,
                progress: bool = True,
                gdal_cache_mb: int = 64) -> SceneResult:
    """Segment one co-registered scene and write ``<out_prefix>_semantic.tif`` (uint8 class ids,
    255 = nodata), ``<out_prefix>_panoptic.tif`` (int32, mmdet encoding
    ``class + instance_id * INSTANCE_OFFSET``, ``len(classes)`` = void) - both tiled, deflate
    compressed, with the source CRS and geotransform - and ``<out_prefix>_instances.geojson``
    (the things as polygons in the source CRS).

    Args:
        model: A PMTSeg model in eval mode.
        spec: The config's :class:`ModalitySpec`.
        paths: ``modality -> raster path`` (GeoTIFF or any GDAL raster); the first is the
            reference grid.
        out_prefix: Output path prefix.
        classes: Class names (things first).
        num_things: Number of thing classes.
        window: Window side in pixels (the model's input size; no resizing).
        overlap: Pixels shared by neighbouring windows.
        batch_size: Windows per forward pass.
        block_size: Side of the blocks processed at once; bounds the memory.
        missing: Modalities declared missing (filled as ModalityDropout does in training).
        resample: Reproject modalities whose grid differs onto the reference grid instead of
            refusing them.
        score_thr: Minimum instance score.
        min_area: Minimum instance area in pixels (per window).
        join_iou: Mask IoU inside the shared region to join predictions of two windows.
        progress: Show a progress bar (windows).
        gdal_cache_mb: GDAL raster block cache in MB (GDAL's default is 5% of the RAM).
    """
    if block_size < window:
        raise ValueError(f'block_size ({block_size}) must be >= window ({window})')
    num_classes = len(classes)
    if not 0 < num_things <= num_classes or num_classes >= 255:
        raise ValueError(f'need 0 < num_things ({num_things}) <= number of classes '
                         f'({num_classes}) < 255')
    out = dict(semantic=f'{out_prefix}_semantic.tif', panoptic=f'{out_prefix}_panoptic.tif',
               geojson=f'{out_prefix}_instances.geojson')
    # GDAL's block cache defaults to 5% of the RAM: cap it so memory stays flat with scene size
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb), \
            SceneReader(paths, spec, missing, resample) as reader:
        grid = WindowGrid(reader.height, reader.width, window, overlap)
        blocks = [(by, bx, min(by + block_size, reader.height), min(bx + block_size, reader.width))
                  for by in range(0, reader.height, block_size)
                  for bx in range(0, reader.width, block_size)]
        total = sum(len(grid.touching(*b)) for b in blocks)
        bar = tqdm(total=total, desc=f'windows of {osp.basename(out_prefix)}', unit='win',
                   disable=not progress, file=sys.stderr)
        collected: List[WindowInstance] = []
        tmp_sem = _atomic_path(out['semantic'])
        try:
            with rasterio.open(tmp_sem, 'w', **_raster_profile(reader, 'uint8', 255)) as sem_out:
                for block in blocks:
                    collected += _run_block(model, reader, grid, block, block_size, sem_out,
                                            batch_size, score_thr, min_area, bar)
            bar.close()
            instances = join_instances(collected, grid.weights, join_iou)
            del collected
            instances.sort(key=lambda i: -i.score)
            _write_panoptic(reader, blocks, tmp_sem, out['panoptic'], instances, num_things,
                            num_classes)
            os.replace(tmp_sem, out['semantic'])
        finally:
            if osp.exists(tmp_sem):
                os.remove(tmp_sem)
        tmp_json = _atomic_path(out['geojson'])
        with open(tmp_json, 'w') as f:
            crs_name = reader.crs.to_string() if reader.crs is not None else None
            json.dump(dict(type='FeatureCollection',
                           crs=dict(type='name', properties=dict(name=crs_name)),
                           features=list(instance_features(instances, reader, classes))), f)
        os.replace(tmp_json, out['geojson'])
        return SceneResult(num_instances=len(instances), windows_run=total,
                           windows_in_grid=len(grid), height=reader.height, width=reader.width,
                           **out)


def _run_block(model, reader: SceneReader, grid: WindowGrid, block: Tuple[int, int, int, int],
               block_size: int, sem_out, batch_size: int, score_thr: float, min_area: int,
               bar) -> List[WindowInstance]:
    """Blend the windows touching ``block``, write its semantic labels, return the instances
    of the windows that start inside it (each window's instances are kept exactly once)."""
    by0, bx0, by1, bx1 = block
    cells = grid.touching(*block)
    boxes = [grid.box(r, c) for r, c in cells]
    ey0, ex0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    ey1, ex1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    acc: Optional[np.ndarray] = None
    wsum = np.zeros((ey1 - ey0, ex1 - ex0), np.float32)
    instances: List[WindowInstance] = []
    for start in range(0, len(boxes), batch_size):
        batch = boxes[start:start + batch_size]
        scores, insts = predict_windows(model, [reader.read(*b) for b in batch])
        for box, score, (labels, inst_scores, masks) in zip(batch, scores, insts):
            if acc is None:
                acc = np.zeros((score.shape[0], ey1 - ey0, ex1 - ex0), np.float32)
            sl = (slice(box[0] - ey0, box[2] - ey0), slice(box[1] - ex0, box[3] - ex0))
            acc[(slice(None), ) + sl] += score * grid.weights
            wsum[sl] += grid.weights
            if by0 <= box[0] < by1 and bx0 <= box[1] < bx1:
                found = [WindowInstance.from_window_mask(label, s, box, m)
                         for label, s, m in zip(labels, inst_scores, masks)
                         if s >= score_thr and m.sum() >= min_area]
                instances += suppress_duplicates([i for i in found if i is not None])
        bar.update(len(batch))
    region = (slice(by0 - ey0, by1 - ey0), slice(bx0 - ex0, bx1 - ex0))
    labels = acc[(slice(None), ) + region].argmax(0).astype(np.uint8)
    labels[wsum[region] <= 0] = 255
    sem_out.write(labels[None], window=Window(bx0, by0, bx1 - bx0, by1 - by0))
    return instances


def _write_panoptic(reader: SceneReader, blocks, sem_path: str, out_path: str,
                    instances: Sequence[SceneInstance], num_things: int,
                    num_classes: int) -> None:
    """Panoptic raster by blocks: stuff from the semantic raster, things from the joined
    instances (higher scores on top); thing-class pixels without an instance are void."""
    if (len(instances) + 1) * INSTANCE_OFFSET + num_classes >= 2**31:
        raise ValueError(f'{len(instances)} instances do not fit the int32 panoptic encoding')
    tmp = _atomic_path(out_path)
    try:
        with rasterio.open(sem_path) as sem, \
                rasterio.open(tmp, 'w', **_raster_profile(reader, 'int32', None)) as pan_out:
            for by0, bx0, by1, bx1 in blocks:
                win = Window(bx0, by0, bx1 - bx0, by1 - by0)
                semantic = sem.read(1, window=win).astype(np.int32)
                pan = np.where((semantic < num_things) | (semantic >= num_classes), num_classes,
                               semantic).astype(np.int32)
                for index in range(len(instances), 0, -1):  # lowest score first
                    inst = instances[index - 1]
                    inter = _intersect(inst.box, (by0, bx0, by1, bx1))
                    if inter is None:
                        continue
                    m = _crop(inst, inter)
                    sl = (slice(inter[0] - by0, inter[2] - by0), slice(inter[1] - bx0,
                                                                       inter[3] - bx0))
                    pan[sl][m] = inst.label + index * INSTANCE_OFFSET
                pan_out.write(pan[None], window=win)
        os.replace(tmp, out_path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
