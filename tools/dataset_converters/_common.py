"""Shared writers of the dataset converters (layout: docs/dataset_prepare.md, "The common layout").

Every converter writes, per split, the modality images first, then the COCO panoptic PNGs, and
the two JSON files last, atomically (temporary file + ``os.replace``). The split's JSON files
are removed before a split starts and again if it fails, so a JSON on disk always describes a
complete split.
"""
import os
import os.path as osp
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import tifffile
from panopticapi.utils import id2rgb
from tqdm import tqdm

from pmtseg_mm.datasets.coco_format import atomic_write_json, mask_bbox, mask_rle
from pmtseg_mm.datasets.transforms.loading import TIFF_SUFFIXES, read_raster

# pixels per band kept for the percentile estimate of modality_stats.json
STATS_SAMPLES_PER_IMAGE = 4096
# Segment.category_id that marks pixels as void (no-data) in the panoptic map
VOID_ID = 0


class ConversionError(ValueError):
    """A raw input cannot be converted; the message names the file."""


def read_image(path: str) -> np.ndarray:
    """Read a raster as (H, W, C) in its stored dtype; colour PNG/JPG come back in RGB order."""
    if not osp.isfile(path):
        raise ConversionError(f'missing input file: {path}')
    try:
        array = read_raster(path)
    except (FileNotFoundError, ValueError) as err:
        raise ConversionError(f'{err}') from None
    if not path.lower().endswith(TIFF_SUFFIXES) and array.shape[2] in (3, 4):
        array = np.ascontiguousarray(array[..., 2::-1])  # cv2 decodes BGR(A)
    return array


def write_image(path: str, array: np.ndarray) -> None:
    """Write (H, W[, C]) to ``.png`` (8/16-bit, RGB on disk) or ``.tif`` (any dtype/bands)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if path.lower().endswith(TIFF_SUFFIXES):
        tifffile.imwrite(path, array)
        return
    if array.ndim == 3:
        array = array[..., ::-1]  # RGB -> BGR for cv2
    if not cv2.imwrite(path, np.ascontiguousarray(array)):
        raise ConversionError(f'cannot write {path} (dtype {array.dtype}, shape {array.shape})')


def split_json_paths(out: str, split: str) -> Tuple[str, str]:
    return (osp.join(out, 'annotations', f'panoptic_{split}.json'),
            osp.join(out, 'annotations', f'instances_{split}.json'))


@contextmanager
def split_guard(out: str, split: str, folders: Sequence[str], skip_existing: bool) -> Iterator[None]:
    """Remove the split's JSONs (and, unless ``skip_existing``, its output folders) before
    converting it; remove its JSONs again if the conversion fails."""
    jsons = split_json_paths(out, split) + (osp.join(out, 'annotations', f'images_{split}.json'), )
    for path in jsons:
        if osp.exists(path):
            os.remove(path)
    for folder in folders:
        if not skip_existing and osp.isdir(folder):
            shutil.rmtree(folder)
        os.makedirs(folder, exist_ok=True)
    try:
        yield
    except BaseException:
        for path in jsons:
            if osp.exists(path):
                os.remove(path)
        raise


def categories_from_metainfo(metainfo: Dict[str, Sequence]) -> List[dict]:
    """COCO categories with contiguous ids 1..K in ``classes`` order (things first)."""
    classes = list(metainfo['classes'])
    things = set(metainfo['thing_classes'])
    if classes[:len(things)] != [c for c in classes if c in things]:
        raise ValueError(f'metainfo must list the things first, got classes={classes}')
    return [
        dict(id=i + 1, name=name, supercategory=name, isthing=int(name in things),
             color=list(metainfo['palette'][i])) for i, name in enumerate(classes)
    ]


def normalise(name: str) -> str:
    """Category name key: case, surrounding blanks, spaces and hyphens ignored."""
    return name.strip().lower().replace(' ', '_').replace('-', '_')


def decode_segmentation(segm, height: int, width: int, where: str) -> np.ndarray:
    """Polygons (a list of flat point lists, or one flat list), uncompressed or compressed RLE
    -> bool mask (H, W)."""
    if isinstance(segm, list) and not segm:
        return np.zeros((height, width), bool)
    if isinstance(segm, list) and isinstance(segm[0], (int, float)):
        segm = [segm]
    try:
        if isinstance(segm, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
        elif isinstance(segm, dict) and isinstance(segm.get('counts'), list):
            rle = mask_utils.frPyObjects(segm, height, width)
        elif isinstance(segm, dict):
            rle = dict(segm, counts=segm['counts'].encode('ascii')
                       if isinstance(segm['counts'], str) else segm['counts'])
        else:
            raise TypeError(f'unsupported type {type(segm).__name__}')
        mask = mask_utils.decode(rle).astype(bool)
    except Exception as err:  # noqa: BLE001  (pycocotools raises many types)
        raise ConversionError(f'{where}: cannot decode segmentation: {err}') from None
    if mask.shape != (height, width):
        raise ConversionError(f'{where}: segmentation is {mask.shape[0]}x{mask.shape[1]} but the '
                              f'image is {height}x{width} (HxW)')
    return mask


@dataclass
class Segment:
    """One annotated region before rasterisation; painted in list order (later on top).
    ``category_id == VOID_ID`` paints its pixels void."""
    category_id: int
    mask: np.ndarray  # bool (H, W)
    iscrowd: int = 0


def rasterize(shape: Tuple[int, int], segments: Sequence[Segment],
              thing_ids: Sequence[int]) -> Tuple[np.ndarray, Dict[int, Tuple[int, int]]]:
    """Paint segments into a panoptic id map (0 = void); stuff segments of one category share
    one id (COCO panoptic: one stuff segment per class and image); a ``VOID_ID`` segment resets
    its pixels to void.

    Returns the id map and ``{segment_id: (category_id, iscrowd)}``.
    """
    pan = np.zeros(shape, np.int32)
    meta: Dict[int, Tuple[int, int]] = {}
    stuff_ids: Dict[int, int] = {}
    thing_ids = set(thing_ids)
    for seg in segments:
        if seg.mask.shape != tuple(shape):
            raise ValueError(f'segment mask {seg.mask.shape} does not match the image {shape}')
        if seg.category_id == VOID_ID:
            pan[seg.mask] = 0
            continue
        if seg.category_id in thing_ids:
            seg_id = len(meta) + 1
            meta[seg_id] = (seg.category_id, int(seg.iscrowd))
        else:
            if seg.category_id not in stuff_ids:
                stuff_ids[seg.category_id] = len(meta) + 1
                meta[stuff_ids[seg.category_id]] = (seg.category_id, 0)
            seg_id = stuff_ids[seg.category_id]
        pan[seg.mask] = seg_id
    return pan, meta


def panoptic_record(file_name: str, pan: np.ndarray, meta: Dict[int, Tuple[int, int]],
                    thing_ids: Sequence[int], png_path: str) -> dict:
    """Write the panoptic PNG and return the image's record: ``segments_info`` for the
    panoptic JSON and RLE ``instances`` (non-crowd and crowd things) for the instances JSON.

    Areas and boxes are measured on the final map, so occluded parts are not counted; segments
    left without a pixel are dropped.
    """
    write_image(png_path, id2rgb(pan))
    ids, areas = np.unique(pan, return_counts=True)
    segments_info, instances = [], []
    for seg_id, area in zip(ids.tolist(), areas.tolist()):
        if seg_id == 0:
            continue
        category_id, iscrowd = meta[seg_id]
        mask = pan == seg_id
        bbox = mask_bbox(mask)
        segments_info.append(dict(id=seg_id, category_id=category_id, iscrowd=iscrowd,
                                  area=int(area), bbox=bbox))
        if category_id in thing_ids:
            instances.append(dict(category_id=category_id, segmentation=mask_rle(mask),
                                  area=int(area), bbox=bbox, iscrowd=iscrowd))
    return dict(file_name=file_name, height=int(pan.shape[0]), width=int(pan.shape[1]),
                segments_info=segments_info, instances=instances)


def write_split_json(out: str, split: str, categories: List[dict], records: List[dict]) -> None:
    """Write ``instances_<split>.json`` then ``panoptic_<split>.json`` (both atomically)."""
    pan_path, ins_path = split_json_paths(out, split)
    images, pan_anns, ins_anns = [], [], []
    for image_id, rec in enumerate(records, start=1):
        images.append(dict(id=image_id, file_name=rec['file_name'], height=rec['height'],
                           width=rec['width']))
        pan_anns.append(dict(image_id=image_id,
                             file_name=osp.splitext(rec['file_name'])[0] + '.png',
                             segments_info=rec['segments_info']))
        for inst in rec['instances']:
            ins_anns.append(dict(inst, id=len(ins_anns) + 1, image_id=image_id))
    things = [c for c in categories if c['isthing']]
    atomic_write_json(ins_path, dict(images=images, annotations=ins_anns, categories=things))
    atomic_write_json(pan_path, dict(images=images, annotations=pan_anns, categories=categories))


def write_image_list_json(out: str, split: str, categories: List[dict],
                          images: List[Tuple[str, int, int]]) -> str:
    """Write ``annotations/images_<split>.json`` (atomically): a COCO file with the images
    ``(file_name, height, width)``, the categories and no annotations, for a split without
    labels (inference only). Returns its path."""
    path = osp.join(out, 'annotations', f'images_{split}.json')
    atomic_write_json(path, dict(
        images=[dict(id=i, file_name=name, height=int(h), width=int(w))
                for i, (name, h, w) in enumerate(images, start=1)],
        annotations=[], categories=categories))
    return path


def band_partial(array: np.ndarray) -> dict:
    """Per-band sums of one image (H, W, C) plus a fixed strided pixel sample for percentiles."""
    flat = array.reshape(-1, array.shape[-1]).astype(np.float64)
    step = max(1, flat.shape[0] // STATS_SAMPLES_PER_IMAGE)
    return dict(sum=flat.sum(0), sumsq=(flat**2).sum(0), count=flat.shape[0],
                sample=flat[::step].astype(np.float32), integer8=array.dtype == np.uint8)


def merge_partials(partials: Sequence[dict]) -> dict:
    """mean/std per band (population std); 1/99 % percentiles for data that is not 8-bit."""
    if not partials:
        raise ValueError('no images to compute modality statistics from')
    count = sum(p['count'] for p in partials)
    mean = sum(p['sum'] for p in partials) / count
    var = np.maximum(sum(p['sumsq'] for p in partials) / count - mean**2, 0.0)
    stats = dict(mean=[round(float(v), 4) for v in mean],
                 std=[round(float(v), 4) for v in np.sqrt(var)])
    if not all(p['integer8'] for p in partials):
        sample = np.concatenate([p['sample'] for p in partials])
        stats['p1'] = [round(float(v), 4) for v in np.percentile(sample, 1, axis=0)]
        stats['p99'] = [round(float(v), 4) for v in np.percentile(sample, 99, axis=0)]
    return stats


def write_modality_stats(out: str, partials: Dict[str, List[dict]]) -> dict:
    stats = {name: merge_partials(parts) for name, parts in partials.items()}
    atomic_write_json(osp.join(out, 'modality_stats.json'), stats)
    return stats


def parallel_map(fn: Callable, items: Sequence, workers: int, desc: str) -> List:
    """``[fn(item) for item in items]`` in order, over ``workers`` processes, with a progress
    bar. A worker's exception is re-raised here."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in tqdm(items, desc=desc, unit='img')]
    with get_context('fork').Pool(min(workers, len(items))) as pool:
        return list(tqdm(pool.imap(fn, items), total=len(items), desc=desc, unit='img'))


def add_common_args(parser, workers_default: int = 4) -> None:
    parser.add_argument('--src', required=True, help='root folder of the raw dataset')
    parser.add_argument('--out', required=True, help='output root (data/<dataset>)')
    parser.add_argument('--workers', type=int, default=workers_default,
                        help='worker processes (1 = serial)')
    parser.add_argument('--skip-existing', action='store_true',
                        help='keep image files already written instead of rewriting them '
                        '(annotations and JSONs are always rewritten)')


def maybe_write(path: str, array_fn: Callable[[], np.ndarray], skip_existing: bool) -> None:
    """Write ``array_fn()`` to ``path`` unless ``skip_existing`` and the file exists."""
    if not (skip_existing and osp.exists(path)):
        write_image(path, array_fn())


def cli(main: Callable[[Optional[List[str]]], Any]) -> None:
    """Run a converter's ``main`` and turn a ConversionError into an exit message."""
    try:
        main(None)
    except ConversionError as err:
        raise SystemExit(f'error: {err}') from None
