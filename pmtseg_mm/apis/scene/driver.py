"""Whole-scene inference: windows of the scene through ``PMTSeg.predict_window_scores``,
scores blended block by block, instances joined, rasters and GeoJSON written."""
import json
import os.path as osp
import sys
from dataclasses import dataclass
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from tqdm import tqdm

from ...models.detectors import PMTSeg
from ..inputs import ModalitySpec
from .grid import WindowGrid
from .instances import WindowInstance, join_instances, suppress_duplicates
from .progress import SceneProgress, file_digest, file_identity, model_digest
from .reader import SceneReader
from .writer import (instance_features, raster_profile, temporary_output, to_cog,
                     write_geopackage, write_panoptic)

try:  # see reader.py
    import rasterio
    from rasterio.windows import Window
except ImportError:  # pragma: no cover
    rasterio = None


def _check_model(model: torch.nn.Module) -> None:
    if not isinstance(model, PMTSeg):
        raise TypeError(f'whole-scene inference needs a PMTSeg model (predict_window_scores), '
                        f'got {type(model).__name__}')


@torch.no_grad()
def predict_windows(model: torch.nn.Module, images: Sequence[np.ndarray]
                    ) -> Tuple[List[np.ndarray], List[Tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Semantic scores (C, h, w) and instances (labels, scores, masks) of windows (h, w, ΣC
    stacked modalities), from one ``PMTSeg.predict_window_scores`` call for the batch."""
    _check_model(model)
    samples = [DetDataSample(metainfo=dict(img_shape=img.shape[:2], ori_shape=img.shape[:2],
                                           scale_factor=(1.0, 1.0))) for img in images]
    data = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
                     for img in images], data_samples=samples), False)
    results = model.predict_window_scores(data['inputs'], data['data_samples'])
    scores = [r['sem_scores'].cpu().numpy() for r in results]
    instances = [(r['ins_results'].labels.cpu().numpy(), r['ins_results'].scores.cpu().numpy(),
                  r['ins_results'].masks.cpu().numpy().astype(bool)) for r in results]
    return scores, instances


@dataclass
class SceneResult:
    """What :func:`infer_scene` wrote and measured."""
    semantic: str
    panoptic: str
    geojson: str
    geopackage: Optional[str]
    num_instances: int
    windows_run: int  # window reads run by this call
    windows_nodata: int  # window reads without a valid pixel, skipped (over all runs)
    windows_in_grid: int
    blocks_resumed: int  # blocks finished by an earlier, interrupted run
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
                nodata: Optional[Mapping[str, float]] = None,
                score_thr: float = 0.5,
                min_area: int = 4,
                join_iou: float = 0.5,
                progress: bool = True,
                gdal_cache_mb: int = 64,
                restart: bool = False,
                geopackage: bool = False) -> SceneResult:
    """Segment one co-registered scene and write ``<out_prefix>_semantic.tif`` (uint8 class ids,
    255 = nodata), ``<out_prefix>_panoptic.tif`` (int32, mmdet encoding
    ``class + instance_id * INSTANCE_OFFSET``, ``len(classes)`` = void) - both Cloud-Optimized
    GeoTIFFs (256-px tiles, deflate, nearest-neighbour overviews) with the source CRS and
    geotransform - and ``<out_prefix>_instances.geojson``
    (the things as polygons in the source CRS).

    Nodata: a pixel is valid only where no given modality is nodata (see :class:`SceneReader`).
    Windows without a valid pixel are not run; invalid pixels get the missing-modality fill
    before the network sees them, are 255 in the semantic raster and void in the panoptic one,
    and belong to no instance (so to no polygon).

    Args:
        model: A PMTSeg model in eval mode (with the onnxruntime backend: a model attached to
            the graph, ``OnnxRuntimeBackend.attach``; ``window`` must be the graph's).
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
        nodata: ``modality -> nodata value``, overriding the config's and the raster's.
        score_thr: Minimum instance score.
        min_area: Minimum instance area in pixels (per window).
        join_iou: Mask IoU inside the shared region to join predictions of two windows.
        progress: Show a progress bar (windows).
        gdal_cache_mb: GDAL raster block cache in MB (GDAL's default is 5% of the RAM).
        restart: Discard the progress of an interrupted run instead of resuming it.
        geopackage: Also write the instances to ``<out_prefix>_instances.gpkg`` (a GeoPackage
            opens faster than GeoJSON in QGIS for many instances and is spatially indexed).

    Resuming: finished blocks are kept in ``<out_prefix>_progress/`` (:class:`SceneProgress`)
    until the outputs are complete, so rerunning the same call after a kill continues with the
    next unfinished block and writes the same outputs as an uninterrupted run; another model,
    config, input file or option refuses to resume (``ValueError``) unless ``restart``.
    """
    _check_model(model)
    if block_size < window:
        raise ValueError(f'block_size ({block_size}) must be >= window ({window})')
    num_classes = len(classes)
    if not 0 < num_things <= num_classes or num_classes >= 255:
        raise ValueError(f'need 0 < num_things ({num_things}) <= number of classes '
                         f'({num_classes}) < 255')
    backend = getattr(model, 'onnx_backend', None)
    if backend is not None:
        backend.check_window((window, window), 'the scene window (--window)')
    out = dict(semantic=f'{out_prefix}_semantic.tif', panoptic=f'{out_prefix}_panoptic.tif',
               geojson=f'{out_prefix}_instances.geojson')
    fingerprint = dict(
        model=model_digest(model) if backend is None else f'onnx {file_digest(backend.path)}',
        test_cfg=str(getattr(model, 'test_cfg', None)),
        fusion_test_cfg=str(getattr(model.panoptic_fusion_head, 'test_cfg', None)),
        modalities=dict(names=list(spec.names), channels=list(spec.channels),
                        options=str(spec.options),
                        fill={n: np.asarray(v).tolist()
                              for n, v in (spec.fill_values or {}).items()}),
        inputs={n: file_identity(p) for n, p in paths.items()},
        options=dict(classes=list(classes), num_things=num_things, window=window,
                     overlap=overlap, batch_size=batch_size, block_size=block_size,
                     missing=sorted(missing), resample=resample,
                     nodata={n: repr(float(v)) for n, v in (nodata or {}).items()},
                     score_thr=score_thr, min_area=min_area, join_iou=join_iou))
    # GDAL's block cache defaults to 5% of the RAM: cap it so memory stays flat with scene size
    with rasterio.Env(GDAL_CACHEMAX=gdal_cache_mb), \
            SceneReader(paths, spec, missing, resample, nodata) as reader:
        state = SceneProgress(f'{out_prefix}_progress', fingerprint, restart)
        grid = WindowGrid(reader.height, reader.width, window, overlap)
        blocks = [(by, bx, min(by + block_size, reader.height), min(bx + block_size, reader.width))
                  for by in range(0, reader.height, block_size)
                  for bx in range(0, reader.width, block_size)]
        per_block = [len(grid.touching(*b)) for b in blocks]
        bar = tqdm(total=sum(per_block), desc=f'windows of {osp.basename(out_prefix)}',
                   unit='win', disable=not progress, file=sys.stderr,
                   initial=sum(n for i, n in enumerate(per_block) if i in state.done))
        run, resumed_blocks = 0, len(state.done)
        for index, block in enumerate(blocks):
            if index in state.done:
                continue
            labels, found, empty = _run_block(model, reader, grid, block, batch_size,
                                              score_thr, min_area, bar)
            state.save_block(index, labels, found, empty)
            run += per_block[index] - empty
        bar.close()
        collected: List[WindowInstance] = []
        with temporary_output(out['semantic'], publish=False) as tmp_sem:
            with rasterio.open(tmp_sem, 'w', **raster_profile(reader, 'uint8', 255)) as sem_out:
                for index, (by0, bx0, by1, bx1) in enumerate(blocks):
                    labels, found = state.load_block(index)
                    sem_out.write(labels[None], window=Window(bx0, by0, bx1 - bx0, by1 - by0))
                    collected += found
            instances = join_instances(collected, grid.weights, join_iou)
            del collected
            instances.sort(key=lambda i: -i.score)
            write_panoptic(reader, blocks, tmp_sem, out['panoptic'], instances, num_things,
                           num_classes)
            to_cog(tmp_sem, out['semantic'])
        with temporary_output(out['geojson']) as tmp_json, open(tmp_json, 'w') as f:
            crs_name = reader.crs.to_string() if reader.crs is not None else None
            json.dump(dict(type='FeatureCollection',
                           crs=dict(type='name', properties=dict(name=crs_name)),
                           features=list(instance_features(instances, reader, classes))), f)
        out['geopackage'] = None
        if geopackage:
            out['geopackage'] = f'{out_prefix}_instances.gpkg'
            write_geopackage(instance_features(instances, reader, classes), reader.crs,
                             out['geopackage'])
        state.remove()
        return SceneResult(num_instances=len(instances), windows_run=run,
                           windows_nodata=sum(state.done.values()), windows_in_grid=len(grid),
                           blocks_resumed=resumed_blocks, height=reader.height,
                           width=reader.width, **out)


def _run_block(model, reader: SceneReader, grid: WindowGrid, block: Tuple[int, int, int, int],
               batch_size: int, score_thr: float, min_area: int,
               bar) -> Tuple[np.ndarray, List[WindowInstance], int]:
    """Blend the windows touching ``block``; return its semantic labels (255 where no window
    ran or a pixel is nodata), the instances of the windows that start inside it (each
    window's instances are kept exactly once, masked to valid pixels) and the number of
    windows skipped for having no valid pixel."""
    by0, bx0, by1, bx1 = block
    cells = grid.touching(*block)
    boxes = [grid.box(r, c) for r, c in cells]
    ey0, ex0 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    ey1, ex1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    acc: Optional[np.ndarray] = None
    wsum = np.zeros((ey1 - ey0, ex1 - ex0), np.float32)
    valid_px = np.zeros((ey1 - ey0, ex1 - ex0), bool)
    instances: List[WindowInstance] = []
    skipped = 0
    for start in range(0, len(boxes), batch_size):
        read = [(box, *reader.read(*box)) for box in boxes[start:start + batch_size]]
        bar.update(len(read))
        batch = [(box, img, valid) for box, img, valid in read if valid.any()]
        skipped += len(read) - len(batch)
        if not batch:
            continue
        scores, insts = predict_windows(model, [img for _, img, _ in batch])
        for (box, _, valid), score, (labels, inst_scores, masks) in zip(batch, scores, insts):
            if acc is None:
                acc = np.zeros((score.shape[0], ey1 - ey0, ex1 - ex0), np.float32)
            sl = (slice(box[0] - ey0, box[2] - ey0), slice(box[1] - ex0, box[3] - ex0))
            acc[(slice(None), ) + sl] += score * grid.weights
            wsum[sl] += grid.weights
            valid_px[sl] |= valid
            if by0 <= box[0] < by1 and bx0 <= box[1] < bx1:
                masks = masks & valid
                found = [WindowInstance.from_window_mask(label, s, box, m)
                         for label, s, m in zip(labels, inst_scores, masks)
                         if s >= score_thr and m.sum() >= min_area]
                instances += suppress_duplicates([i for i in found if i is not None])
    region = (slice(by0 - ey0, by1 - ey0), slice(bx0 - ex0, bx1 - ex0))
    if acc is None:  # every window of the block is nodata
        labels = np.full((by1 - by0, bx1 - bx0), 255, np.uint8)
    else:
        labels = acc[(slice(None), ) + region].argmax(0).astype(np.uint8)
        labels[(wsum[region] <= 0) | ~valid_px[region]] = 255
    return labels, instances, skipped
