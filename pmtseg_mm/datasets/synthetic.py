"""Embedded synthetic multimodal remote-sensing dataset (optical + depth | SAR | NIR).

Scenes are built so that the second modality is *necessary*:

* flat building roofs and roads share one optical grey (per scene), only height separates them;
* trees and grass share one green; trees are domes 3-10 m high, grass is flat;
* blocks of touching buildings have identical roofs but different heights, so instance
  boundaries are visible only in the aux modality;
* about a quarter of the scenes are dark or foggy in optical while the aux modality is unchanged;
* cars (1.5 m) are small and coloured, visible optically on roads; water is flat and blue-ish.

Aux encodings: ``depth`` = height above ground in metres (float32 TIFF, nDSM-like, 0.1 m noise);
``sar`` = backscatter in dB (float32 TIFF) with 4-look gamma speckle, dark water, medium
vegetation and bright double-bounce lines along building walls; ``nir`` = 8-bit reflectance
(PNG): vegetation bright, roof material brighter than road asphalt (unlike optical).
"""
import json
import os
import os.path as osp
from multiprocessing import Pool
from typing import Dict, List, Tuple

import cv2
import numpy as np
import tifffile
from mmdet.registry import DATASETS
from panopticapi.utils import id2rgb
from pycocotools import mask as mask_utils
from tqdm import tqdm

from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset

SYNTHETIC_METAINFO = dict(
    classes=('building', 'tree', 'car', 'road', 'grass', 'water'),
    thing_classes=('building', 'tree', 'car'),
    stuff_classes=('road', 'grass', 'water'),
    palette=[(238, 118, 33), (0, 222, 137), (255, 0, 0), (128, 128, 128), (34, 139, 34),
             (0, 0, 238)])
BUILDING, TREE, CAR, ROAD, GRASS, WATER = range(1, 7)  # category ids (things first)
AUX_MODALITIES = ('depth', 'sar', 'nir')
SPLITS = ('train', 'val')
MIN_AREA = 16


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, amp: float) -> np.ndarray:
    """Low-frequency texture: random grid upsampled bicubically."""
    grid = rng.normal(0, amp, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


class _Scene:
    """Category and instance maps of one scene, plus building/tree heights."""

    def __init__(self, rng: np.random.Generator, size: int) -> None:
        self.rng, self.size = rng, size
        self.cat = np.full((size, size), GRASS, np.int32)
        self.inst = np.zeros((size, size), np.int32)  # 0 = stuff, k = k-th thing
        self.height = np.zeros((size, size), np.float32)
        self.things: List[int] = []  # category of thing k (index k-1)
        self.walls = np.zeros((size, size), bool)

    def free(self, y0: int, x0: int, y1: int, x1: int, allowed: Tuple[int, ...]) -> bool:
        region = self.cat[y0:y1, x0:x1]
        return (region.size > 0 and (self.inst[y0:y1, x0:x1] == 0).all()
                and np.isin(region, allowed).all())

    def add_thing(self, mask: np.ndarray, cat: int, height: np.ndarray) -> None:
        self.things.append(cat)
        self.inst[mask] = len(self.things)
        self.cat[mask] = cat
        self.height[mask] = height[mask] if height.ndim else height


def _layout(rng: np.random.Generator, size: int) -> _Scene:
    s = _Scene(rng, size)
    k = size / 128.0
    yy, xx = np.mgrid[:size, :size]
    if rng.random() < 0.6:  # pond or river
        if rng.random() < 0.5:
            cy, cx = rng.uniform(0.2, 0.8, 2) * size
            ry, rx = rng.uniform(0.08, 0.2, 2) * size
            s.cat[((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 < 1] = WATER
        else:
            x0 = rng.uniform(0.1, 0.9) * size
            s.cat[np.abs(xx - x0 - 0.2 * (yy - size / 2)) < rng.uniform(5, 10) * k] = WATER
    width = max(4, int(round(rng.uniform(7, 11) * k)))
    for axis in (0, 1):  # road network: 1-2 strips per axis
        for _ in range(rng.integers(1, 3)):
            c = int(rng.uniform(0.1, 0.85) * size)
            if axis == 0:
                s.cat[c:c + width, :] = ROAD
            else:
                s.cat[:, c:c + width] = ROAD
    # building blocks: 1-3 touching buildings with identical roofs and different heights
    target, placed = int(rng.integers(2, 7)), 0
    for _ in range(30):  # retry placements until `target` blocks fit on grass
        if placed == target:
            break
        n = int(rng.integers(1, 4))
        bh = max(4, int(rng.uniform(12, 24) * k))  # every thing keeps >= MIN_AREA pixels
        widths = [max(4, int(rng.uniform(8, 16) * k)) for _ in range(n)]
        y0, x0 = int(rng.integers(0, size - bh)), int(rng.integers(0, max(1, size - sum(widths))))
        if not s.free(y0, x0, y0 + bh, x0 + sum(widths), (GRASS, )):
            continue
        placed += 1
        heights = rng.permutation(np.linspace(4, 15, 4))[:n] + rng.uniform(-0.5, 0.5, n)
        for w, h in zip(widths, heights):
            mask = np.zeros((size, size), bool)
            mask[y0:y0 + bh, x0:x0 + w] = True
            s.add_thing(mask, BUILDING, np.float32(h))
            s.walls[y0 + bh:y0 + bh + max(1, int(k)), x0:x0 + w] = True  # wall facing the sensor
            x0 += w
    for _ in range(int(rng.integers(3, 10))):  # trees: domes on grass
        r = rng.uniform(3, 7) * k
        cy, cx = rng.uniform(r, size - r, 2)
        y0, y1, x0, x1 = int(cy - r), int(cy + r) + 1, int(cx - r), int(cx + r) + 1
        d2 = ((yy - cy)**2 + (xx - cx)**2) / r**2
        mask = d2 < 1
        if mask.sum() >= MIN_AREA and s.free(y0, x0, y1, x1, (GRASS, )):
            s.add_thing(mask, TREE, rng.uniform(3, 10) * np.sqrt(np.clip(1 - d2, 0, 1)) + 1)
    road_ys, road_xs = np.nonzero(s.cat == ROAD)
    for _ in range(int(rng.integers(0, 6))):  # cars on roads
        if len(road_ys) == 0:
            break
        i = int(rng.integers(len(road_ys)))
        ch, cw = (max(3, int(4 * k) + 1), max(6, int(8 * k) + 1))[::1 if rng.random() < 0.5 else -1]
        y0, x0 = road_ys[i], road_xs[i]
        if y0 + ch <= size and x0 + cw <= size and s.free(y0, x0, y0 + ch, x0 + cw, (ROAD, )):
            mask = np.zeros((size, size), bool)
            mask[y0:y0 + ch, x0:x0 + cw] = True
            s.add_thing(mask, CAR, np.float32(1.5))
    return s


def _render_optical(s: _Scene, rng: np.random.Generator) -> np.ndarray:
    size = s.size
    grey = rng.uniform(95, 165)  # roofs and roads share it
    green = np.array([rng.uniform(40, 70), rng.uniform(110, 150), rng.uniform(40, 70)])
    colours = {
        ROAD: np.full(3, grey), BUILDING: np.full(3, grey), GRASS: green, TREE: green,
        WATER: np.array([rng.uniform(30, 60), rng.uniform(60, 100), rng.uniform(120, 170)])
    }
    rgb = np.zeros((size, size, 3), np.float32)
    for cat, colour in colours.items():
        rgb[s.cat == cat] = colour
    car_colours = np.array([[200, 30, 30], [30, 60, 200], [235, 235, 235], [25, 25, 25]])
    for k, cat in enumerate(s.things, start=1):
        if cat == CAR:
            rgb[s.inst == k] = car_colours[rng.integers(len(car_colours))]
    rgb += _smooth_noise(rng, size, 8, 10)[..., None] + rng.normal(0, 6, rgb.shape)
    condition = rng.random()
    if condition < 0.125:  # dark
        rgb = rgb * rng.uniform(0.15, 0.35) + rng.normal(0, 3, rgb.shape)
    elif condition < 0.25:  # fog
        alpha = rng.uniform(0.55, 0.8)
        rgb = rgb * (1 - alpha) + 200 * alpha + rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _render_aux(s: _Scene, rng: np.random.Generator, aux: str) -> np.ndarray:
    size = s.size
    if aux == 'depth':
        return (s.height + rng.normal(0, 0.1, (size, size))).astype(np.float32)
    if aux == 'sar':
        db = np.select([s.cat == WATER, s.cat == ROAD, s.cat == GRASS, s.cat == TREE,
                        s.cat == BUILDING, s.cat == CAR], [-20., -13., -10., -6., -9., -2.])
        db = db + 0.15 * s.height  # taller structures return more
        db[s.walls & (s.cat != BUILDING)] = 5.0  # double bounce at walls
        speckle = rng.gamma(4.0, 1 / 4.0, (size, size))
        return (10 * np.log10(10**(db / 10) * speckle + 1e-6)).astype(np.float32)
    nir = np.select([s.cat == WATER, s.cat == ROAD, s.cat == GRASS, s.cat == TREE,
                     s.cat == BUILDING, s.cat == CAR], [15., 55., 175., 195., 115., 45.])
    nir = nir + _smooth_noise(rng, size, 8, 6) + rng.normal(0, 5, (size, size))
    return np.clip(nir, 0, 255).astype(np.uint8)


def _bbox(mask: np.ndarray) -> List[int]:
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]


def _make_sample(job: Tuple[str, int, int, str, int, int]) -> dict:
    """Render and write one sample; return its annotations and per-band sums."""
    out_dir, seed, split_id, aux, size, index = job
    split = SPLITS[split_id]
    rng = np.random.default_rng([seed, split_id, index])
    scene = _layout(rng, size)
    optical = _render_optical(scene, rng)
    aux_img = _render_aux(scene, rng, aux)
    stem = f'{split}_{index:05d}'
    cv2.imwrite(osp.join(out_dir, 'optical', split, stem + '.png'), optical[..., ::-1])
    if aux == 'nir':
        cv2.imwrite(osp.join(out_dir, aux, split, stem + '.png'), aux_img)
    else:
        tifffile.imwrite(osp.join(out_dir, aux, split, stem + '.tif'), aux_img)
    pan = np.zeros((size, size), np.int32)
    segments, instances = [], []
    next_id = 1
    for cat in (ROAD, GRASS, WATER):
        mask = (scene.cat == cat) & (scene.inst == 0)
        if mask.any():
            pan[mask] = next_id
            segments.append(dict(id=next_id, category_id=cat, iscrowd=0, bbox=_bbox(mask),
                                 area=int(mask.sum())))
            next_id += 1
    for k, cat in enumerate(scene.things, start=1):
        mask = scene.inst == k
        pan[mask] = next_id
        seg = dict(id=next_id, category_id=cat, iscrowd=0, bbox=_bbox(mask), area=int(mask.sum()))
        segments.append(seg)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        rle['counts'] = rle['counts'].decode()
        instances.append(dict(category_id=cat, iscrowd=0, bbox=seg['bbox'], area=seg['area'],
                              segmentation=rle))
        next_id += 1
    cv2.imwrite(osp.join(out_dir, 'annotations', f'panoptic_{split}', stem + '.png'),
                id2rgb(pan)[..., ::-1])
    bands = np.concatenate([optical.reshape(-1, 3), aux_img.reshape(-1, 1)], 1).astype(np.float64)
    return dict(stem=stem, segments=segments, instances=instances,
                sums=bands.sum(0), sq_sums=(bands**2).sum(0), count=len(bands))


def _write_json(path: str, obj: dict) -> None:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def generate_synthetic(out_dir: str, num_train: int, num_val: int, size: int = 128,
                       aux: str = 'depth', seed: int = 0, workers: int = 0,
                       progress: bool = True) -> Dict[str, object]:
    """Write the synthetic dataset in the on-disk layout of DESIGN.md; deterministic for a seed
    whatever ``workers`` is. Returns a summary (counts per split and category, paths)."""
    if aux not in AUX_MODALITIES:
        raise ValueError(f'generate_synthetic: unknown `aux`={aux!r}; allowed: {AUX_MODALITIES}')
    if size < 32 or size % 32:
        raise ValueError(f'generate_synthetic: `size` must be a multiple of 32 and >= 32, got {size}')
    if num_train < 1 or num_val < 0:
        raise ValueError('generate_synthetic: need `num_train` >= 1 and `num_val` >= 0, got '
                         f'{num_train} and {num_val}')
    categories = [
        dict(id=i, name=name, supercategory=name, isthing=int(i <= len(
            SYNTHETIC_METAINFO['thing_classes'])), color=list(SYNTHETIC_METAINFO['palette'][i - 1]))
        for i, name in enumerate(SYNTHETIC_METAINFO['classes'], start=1)
    ]
    ann_dir = osp.join(out_dir, 'annotations')
    summary: Dict[str, object] = dict(out_dir=out_dir, aux=aux, size=size)
    stats_sums = None
    for split_id, (split, num) in enumerate(zip(SPLITS, (num_train, num_val))):
        for folder in ('optical', aux, osp.join('annotations', f'panoptic_{split}')):
            os.makedirs(osp.join(out_dir, folder, split if folder in ('optical', aux) else ''),
                        exist_ok=True)
        jobs = [(out_dir, seed, split_id, aux, size, i) for i in range(num)]
        if workers > 0:
            with Pool(workers) as pool:
                it = pool.imap(_make_sample, jobs, chunksize=8)
                results = list(tqdm(it, total=num, desc=f'synthetic {split}', disable=not progress))
        else:
            results = [_make_sample(j) for j in tqdm(jobs, desc=f'synthetic {split}',
                                                      disable=not progress)]
        images, pan_anns, inst_anns = [], [], []
        for img_id, r in enumerate(results):
            images.append(dict(id=img_id, file_name=r['stem'] + '.png', width=size, height=size))
            pan_anns.append(dict(image_id=img_id, file_name=r['stem'] + '.png',
                                 segments_info=r['segments']))
            for inst in r['instances']:
                inst_anns.append(dict(inst, id=len(inst_anns) + 1, image_id=img_id))
        _write_json(osp.join(ann_dir, f'instances_{split}.json'),
                    dict(images=images, annotations=inst_anns,
                         categories=[c for c in categories if c['isthing']]))
        _write_json(osp.join(ann_dir, f'panoptic_{split}.json'),
                    dict(images=images, annotations=pan_anns, categories=categories))
        counts = {c['name']: 0 for c in categories}
        for ann in pan_anns:
            for seg in ann['segments_info']:
                counts[categories[seg['category_id'] - 1]['name']] += 1
        summary[split] = dict(images=num, segments=counts)
        if split == 'train':
            stats_sums = [sum(r[k] for r in results) for k in ('sums', 'sq_sums', 'count')]
    mean = stats_sums[0] / stats_sums[2]
    std = np.sqrt(np.maximum(stats_sums[1] / stats_sums[2] - mean**2, 0))
    stats = dict(optical=dict(mean=mean[:3].round(4).tolist(), std=std[:3].round(4).tolist()),
                 **{aux: dict(mean=mean[3:].round(4).tolist(), std=std[3:].round(4).tolist())})
    _write_json(osp.join(out_dir, 'modality_stats.json'), stats)
    summary['modality_stats'] = stats
    return summary


@DATASETS.register_module()
class SyntheticRSDataset(MultiModalCocoPanopticDataset):
    """The embedded synthetic dataset (:func:`generate_synthetic`)."""
    METAINFO = SYNTHETIC_METAINFO
