"""Embedded synthetic multimodal remote-sensing dataset (optical + depth | SAR | NIR).

Scenes are built so that the second modality is *necessary*:

* flat building roofs and roads share one optical grey (per scene, same texture): optically only
  shape and context separate them, the aux modality does directly;
* trees and grass share one green; trees are domes peaking at 4-11 m (clustered, may touch), grass
  is flat;
* blocks of 1-3 touching buildings have identical roofs but heights at least ~2.7 m apart, so
  their instance boundaries are visible only in the aux modality (in depth; in SAR only weakly,
  through the height term under speckle);
* about a quarter of the scenes are dark (1/8) or foggy (1/8) in optical while the aux modality
  is rendered unchanged (its random stream does not depend on the optical one);
* cars (1.5 m) are 6x12 px at 128 px and coloured, visible optically on roads; water is
  flat and blue-ish. Low-frequency texture and pixel noise keep every class off exact colours.

Aux encodings:

* ``depth``: height above ground in metres (nDSM), float32 TIFF, N(0, 0.1 m) noise;
* ``sar``: backscatter in dB, float32 TIFF: water -20, road -13, grass -10, roofs -9, trees -6,
  cars -2 (+0.15 dB per metre of height), +5 dB double-bounce lines at the building walls facing
  the sensor (the row(s) below each building), then 4-look gamma speckle (multiplicative);
* ``nir``: 8-bit reflectance, PNG: water 15, car 45, road asphalt 55, roof material 115
  (unlike optical, roofs and roads differ), grass 175, trees 195, plus texture and noise.

Layout per split: docs/dataset_prepare.md ("The common layout"); ``modality_stats.json`` holds
per-band mean/std over the train split (optical in RGB order). Every image entry of the JSON files
also carries its optical ``condition`` ('clear' | 'dark' | 'fog') for per-condition analysis.
"""
import os
import os.path as osp
from multiprocessing import Pool
from typing import Dict, List, Tuple, Union

import cv2
import numpy as np
import tifffile
from mmdet.registry import DATASETS
from panopticapi.utils import id2rgb
from tqdm import tqdm

from .coco_format import atomic_write_json, mask_bbox, mask_rle
from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset

SYNTHETIC_METAINFO = dict(
    classes=('building', 'tree', 'car', 'road', 'grass', 'water'),
    thing_classes=('building', 'tree', 'car'),
    stuff_classes=('road', 'grass', 'water'),
    palette=[(238, 118, 33), (0, 222, 137), (255, 0, 0), (128, 128, 128), (34, 139, 34),
             (0, 0, 238)])
BUILDING, TREE, CAR, ROAD, GRASS, WATER = range(1, 7)  # category ids (things first)
STUFF = (ROAD, GRASS, WATER)
AUX_MODALITIES = ('depth', 'sar', 'nir')
AUX_SUFFIXES = dict(depth='.tif', sar='.tif', nir='.png')
SPLITS = ('train', 'val')
CONDITIONS = ('clear', 'dark', 'fog')
MIN_AREA = 16  # smaller segments are never emitted
# independent random streams of one sample: changing one renderer never changes the others
_LAYOUT, _OPTICAL, _AUX = range(3)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, amp: float) -> np.ndarray:
    """Low-frequency texture (correlation length ~16 px): a random grid upsampled bicubically."""
    grid = rng.normal(0, amp, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)


class _Scene:
    """Category and instance maps of one scene, plus the height map (metres)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cat = np.full((size, size), GRASS, np.int32)
        self.inst = np.zeros((size, size), np.int32)  # 0 = stuff, k = k-th thing
        self.height = np.zeros((size, size), np.float32)
        self.things: List[int] = []  # category of thing k (index k - 1)

    def free(self, y0: int, x0: int, y1: int, x1: int, allowed: Tuple[int, ...]) -> bool:
        """Whether the box lies inside the image on stuff of the ``allowed`` categories."""
        if y0 < 0 or x0 < 0 or y1 > self.size or x1 > self.size:
            return False
        return bool((self.inst[y0:y1, x0:x1] == 0).all()
                    and np.isin(self.cat[y0:y1, x0:x1], allowed).all())

    def add_thing(self, box: Tuple[int, int, int, int], mask: np.ndarray, cat: int,
                  height: Union[float, np.ndarray]) -> None:
        """Add a thing whose pixels are ``mask`` inside ``box`` = (y0, x0, y1, x1)."""
        y0, x0, y1, x1 = box
        self.things.append(cat)
        self.inst[y0:y1, x0:x1][mask] = len(self.things)
        self.cat[y0:y1, x0:x1][mask] = cat
        self.height[y0:y1, x0:x1][mask] = height[mask] if np.ndim(height) else height


def _add_water(s: _Scene, rng: np.random.Generator, k: float) -> None:
    size = s.size
    yy, xx = np.mgrid[:size, :size]
    if rng.random() < 0.5:  # pond
        cy, cx = rng.uniform(0.2, 0.8, 2) * size
        ry, rx = rng.uniform(0.08, 0.2, 2) * size
        s.cat[((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 < 1] = WATER
    else:  # slanted, gently meandering river
        x0, slope = rng.uniform(0.1, 0.9) * size, rng.uniform(-0.4, 0.4)
        centre = x0 + slope * (yy - size / 2) + 4 * k * np.sin(yy / size * rng.uniform(3, 9))
        s.cat[np.abs(xx - centre) < rng.uniform(4, 9) * k] = WATER


def _add_roads(s: _Scene, rng: np.random.Generator, k: float) -> None:
    """0-2 strips per axis, at least one: single strips, T-junctions and crossings."""
    counts = rng.integers(0, 3, 2)
    if counts.sum() == 0:
        counts[rng.integers(2)] = 1
    for axis, n in enumerate(counts):
        for _ in range(n):
            width = max(4, int(round(rng.uniform(12, 17) * k)))  # two car widths or more
            c = int(rng.uniform(0.05, 0.9) * s.size)
            if axis == 0:
                s.cat[c:c + width, :] = ROAD
            else:
                s.cat[:, c:c + width] = ROAD


def _add_buildings(s: _Scene, rng: np.random.Generator, k: float) -> None:
    """1-3 blocks of 1-3 touching buildings (split along x or y), each 16-28 x 16-32 px at 128 px,
    with identical roofs and distinct heights (>= 2.7 m apart)."""
    target, placed = int(rng.integers(1, 4)), 0
    for _ in range(40):  # retry placements until `target` blocks fit on grass
        if placed == target:
            break
        n = int(rng.choice(3, p=(0.4, 0.35, 0.25))) + 1
        parts = [max(4, int(rng.uniform(16, 28) * k)) for _ in range(n)]  # >= 4 x 4 = MIN_AREA
        depth = max(4, int(rng.uniform(16, 32) * k))
        along_x = rng.random() < 0.5
        bh, bw = (depth, sum(parts)) if along_x else (sum(parts), depth)
        if bh > s.size or bw > s.size:
            continue
        y0, x0 = int(rng.integers(0, s.size - bh + 1)), int(rng.integers(0, s.size - bw + 1))
        if not s.free(y0, x0, y0 + bh, x0 + bw, (GRASS, )):
            continue
        placed += 1
        heights = rng.permutation(np.linspace(4, 15, 4))[:n] + rng.uniform(-0.5, 0.5, n)
        for p, h in zip(parts, heights):
            box = (y0, x0, y0 + bh, x0 + p) if along_x else (y0, x0, y0 + p, x0 + bw)
            s.add_thing(box, np.ones((box[2] - box[0], box[3] - box[1]), bool), BUILDING,
                        np.float32(h))
            x0, y0 = (x0 + p, y0) if along_x else (x0, y0 + p)


def _add_trees(s: _Scene, rng: np.random.Generator, k: float) -> None:
    """2-6 dome-shaped trees (crowns 10-24 px across at 128 px) in 1-2 clusters; a tree may touch
    or overlap an earlier one (it then keeps only its remaining grass pixels), so touching crowns
    share one optical green."""
    centres = rng.uniform(0.15, 0.85, (int(rng.integers(1, 3)), 2)) * s.size
    target, placed = int(rng.integers(2, 7)), 0
    for _ in range(40):  # retry placements until `target` trees fit
        if placed == target:
            break
        r = max(2.5, rng.uniform(5, 12) * k)
        cy, cx = centres[rng.integers(len(centres))] + rng.normal(0, 0.12 * s.size, 2)
        y0, x0 = int(np.floor(cy - r)), int(np.floor(cx - r))
        y1, x1 = int(np.ceil(cy + r)) + 1, int(np.ceil(cx + r)) + 1
        if y0 < 0 or x0 < 0 or y1 > s.size or x1 > s.size:
            continue
        region_cat, region_inst = s.cat[y0:y1, x0:x1], s.inst[y0:y1, x0:x1]
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d2 = ((yy - cy)**2 + (xx - cx)**2) / r**2
        disc = d2 < 1
        if not np.isin(region_cat[disc], (GRASS, TREE)).all():
            continue  # crowns stay on vegetated ground
        mask = disc & (region_inst == 0)
        if mask.sum() < max(MIN_AREA, 0.6 * disc.sum()):
            continue
        s.add_thing((y0, x0, y1, x1), mask, TREE,
                    rng.uniform(3, 10) * np.sqrt(np.clip(1 - d2, 0, 1)) + 1)
        placed += 1


def _add_cars(s: _Scene, rng: np.random.Generator, k: float) -> None:
    road_ys, road_xs = np.nonzero((s.cat == ROAD) & (s.inst == 0))
    short, long = max(3, int(round(6 * k))), max(6, int(round(12 * k)))  # >= 18 px
    target, placed = int(rng.integers(0, 5)), 0
    for _ in range(20):  # retry placements until `target` cars fit
        if placed == target or len(road_ys) == 0:
            break
        i = int(rng.integers(len(road_ys)))
        ch, cw = (short, long) if rng.random() < 0.5 else (long, short)
        y0, x0 = int(road_ys[i]), int(road_xs[i])
        if s.free(y0, x0, y0 + ch, x0 + cw, (ROAD, )):
            s.add_thing((y0, x0, y0 + ch, x0 + cw), np.ones((ch, cw), bool), CAR,
                        np.float32(1.5))
            placed += 1


def _absorb_small_stuff(s: _Scene) -> None:
    """Relabel a stuff class covering fewer than MIN_AREA pixels as the largest other one."""
    stuff = s.inst == 0
    for cat in STUFF:
        mask = stuff & (s.cat == cat)
        if 0 < mask.sum() < MIN_AREA:
            others = [c for c in STUFF if c != cat]
            s.cat[mask] = max(others, key=lambda c: int((stuff & (s.cat == c)).sum()))


def _layout(rng: np.random.Generator, size: int) -> _Scene:
    s = _Scene(size)
    k = size / 128.0
    if rng.random() < 0.6:
        _add_water(s, rng, k)
    _add_roads(s, rng, k)  # roads over rivers are bridges
    _add_buildings(s, rng, k)
    _add_trees(s, rng, k)
    _add_cars(s, rng, k)
    _absorb_small_stuff(s)
    return s


def _render_optical(s: _Scene, rng: np.random.Generator) -> Tuple[np.ndarray, str]:
    """RGB uint8 image and its acquisition condition (clear, dark or fog)."""
    size = s.size
    grey = rng.uniform(95, 165)  # roofs and roads share it
    green = np.array([rng.uniform(40, 70), rng.uniform(110, 150), rng.uniform(40, 70)])
    water = np.array([rng.uniform(30, 60), rng.uniform(60, 100), rng.uniform(120, 170)])
    lut = np.zeros((7, 3), np.float32)
    lut[[ROAD, BUILDING]], lut[[GRASS, TREE]], lut[WATER] = grey, green, water
    rgb = lut[s.cat]
    car_colours = np.array([[200, 30, 30], [30, 60, 200], [235, 235, 235], [25, 25, 25]])
    for k, cat in enumerate(s.things, start=1):
        if cat == CAR:
            rgb[s.inst == k] = car_colours[rng.integers(len(car_colours))]
    rgb += _smooth_noise(rng, size, size // 16 + 1, 10)[..., None] + rng.normal(0, 6, rgb.shape)
    draw = rng.random()
    condition = 'dark' if draw < 0.125 else 'fog' if draw < 0.25 else 'clear'
    if condition == 'dark':
        rgb = rgb * rng.uniform(0.15, 0.35) + rng.normal(0, 3, rgb.shape)
    elif condition == 'fog':
        alpha = rng.uniform(0.55, 0.8)
        rgb = rgb * (1 - alpha) + 200 * alpha + rng.normal(0, 3, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8), condition


def _render_aux(s: _Scene, rng: np.random.Generator, aux: str) -> np.ndarray:
    size = s.size
    if aux == 'depth':
        return (s.height + rng.normal(0, 0.1, (size, size))).astype(np.float32)
    if aux == 'sar':
        lut = np.zeros(7, np.float32)
        lut[[WATER, ROAD, GRASS, TREE, BUILDING, CAR]] = (-20, -13, -10, -6, -9, -2)
        db = lut[s.cat] + 0.15 * s.height  # taller structures return more
        roof = s.cat == BUILDING
        walls = np.zeros_like(roof)
        for t in range(1, max(1, int(size / 128)) + 1):  # wall facing the sensor: rows below
            walls[t:] |= roof[:-t]
        db[walls & ~roof] = 5.0  # double bounce
        speckle = rng.gamma(4.0, 1 / 4.0, (size, size))  # 4-look intensity speckle
        return (10 * np.log10(10**(db / 10) * speckle + 1e-6)).astype(np.float32)
    lut = np.zeros(7, np.float32)
    lut[[WATER, ROAD, GRASS, TREE, BUILDING, CAR]] = (15, 55, 175, 195, 115, 45)
    nir = lut[s.cat] + _smooth_noise(rng, size, size // 16 + 1, 6) + rng.normal(0, 5, (size, size))
    return np.clip(nir, 0, 255).astype(np.uint8)


def _make_sample(job: Tuple[str, int, int, str, int, int]) -> dict:
    """Render and write the images of one sample; return its annotations and band sums."""
    out_dir, seed, split_id, aux, size, index = job
    split = SPLITS[split_id]
    scene = _layout(np.random.default_rng([seed, split_id, index, _LAYOUT]), size)
    optical, condition = _render_optical(scene,
                                         np.random.default_rng([seed, split_id, index, _OPTICAL]))
    aux_img = _render_aux(scene, np.random.default_rng([seed, split_id, index, _AUX]), aux)
    stem = f'{split}_{index:05d}'
    cv2.imwrite(osp.join(out_dir, 'optical', split, stem + '.png'), optical[..., ::-1])
    aux_path = osp.join(out_dir, aux, split, stem + AUX_SUFFIXES[aux])
    if aux == 'nir':
        cv2.imwrite(aux_path, aux_img)
    else:
        tifffile.imwrite(aux_path, aux_img)
    pan = np.zeros((size, size), np.int32)
    segments, instances = [], []
    masks = [((scene.cat == cat) & (scene.inst == 0), cat) for cat in STUFF]
    masks += [(scene.inst == k, cat) for k, cat in enumerate(scene.things, start=1)]
    for mask, cat in masks:
        area = int(mask.sum())
        if area == 0:
            continue
        assert area >= MIN_AREA, f'internal error: {cat=} segment of {area} px'
        seg = dict(id=len(segments) + 1, category_id=cat, iscrowd=0, bbox=mask_bbox(mask), area=area)
        pan[mask] = seg['id']
        segments.append(seg)
        if cat not in STUFF:
            rle = mask_rle(mask)
            instances.append(dict(category_id=cat, iscrowd=0, bbox=seg['bbox'], area=area,
                                  segmentation=rle))
    cv2.imwrite(osp.join(out_dir, 'annotations', f'panoptic_{split}', stem + '.png'),
                id2rgb(pan)[..., ::-1])
    bands = np.concatenate([optical.reshape(-1, 3), aux_img.reshape(-1, 1)], 1).astype(np.float64)
    return dict(stem=stem, condition=condition, segments=segments, instances=instances,
                sums=bands.sum(0), sq_sums=(bands**2).sum(0), count=len(bands))


def _segment_statistics(areas: Dict[str, List[int]], num_images: int) -> Dict[str, dict]:
    """Per class: segments per image and the 10/50/90th percentiles of segment area (px)."""
    return {
        name: dict(per_image=round(len(a) / max(num_images, 1), 2),
                   area_p10_p50_p90=np.percentile(a, (10, 50, 90)).round(1).tolist() if a else [])
        for name, a in areas.items()
    }


def _check_args(num_train: int, num_val: int, size: int, aux: str, workers: int) -> None:
    if aux not in AUX_MODALITIES:
        raise ValueError(f'generate_synthetic: unknown `aux`={aux!r}; allowed: {AUX_MODALITIES}')
    for name, value in (('num_train', num_train), ('num_val', num_val), ('size', size),
                        ('workers', workers)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f'generate_synthetic: `{name}` must be an int, got {value!r}')
    if size < 32 or size % 32:
        raise ValueError(
            f'generate_synthetic: `size` must be a multiple of 32 and >= 32, got {size}')
    if num_train < 1:
        raise ValueError(f'generate_synthetic: need `num_train` >= 1, got {num_train}')
    if num_val < 0:
        raise ValueError(f'generate_synthetic: need `num_val` >= 0, got {num_val}')
    if workers < 0:
        raise ValueError(f'generate_synthetic: need `workers` >= 0, got {workers}')


def generate_synthetic(out_dir: str, num_train: int, num_val: int, size: int = 128,
                       aux: str = 'depth', seed: int = 0, workers: int = 0,
                       progress: bool = True) -> Dict[str, object]:
    """Write the synthetic dataset in the on-disk layout of docs/dataset_prepare.md.

    Deterministic for ``seed`` whatever ``workers`` is (sample ``i`` of a split draws from
    ``default_rng([seed, split_id, i, stream])``). All images are written first and the JSON
    files last (tmp file + ``os.replace``; stale ones are removed first), so an interrupted run
    leaves no complete-looking annotation file.

    Returns:
        dict: ``out_dir``, ``aux``, ``size``, per split ``images``, ``segments`` (count per
        category) and ``conditions`` (clear/dark/fog counts), ``modality_stats`` and ``paths``
        (modality folders, annotation files, stats file).
    """
    _check_args(num_train, num_val, size, aux, workers)
    ann_dir = osp.join(out_dir, 'annotations')
    json_paths = {f'{kind}_{split}': osp.join(ann_dir, f'{kind}_{split}.json')
                  for split in SPLITS for kind in ('panoptic', 'instances')}
    json_paths['modality_stats'] = osp.join(out_dir, 'modality_stats.json')
    for path in json_paths.values():
        if osp.exists(path):
            os.remove(path)
    results = {}
    for split_id, (split, num) in enumerate(zip(SPLITS, (num_train, num_val))):
        for folder in (osp.join('optical', split), osp.join(aux, split),
                       osp.join('annotations', f'panoptic_{split}')):
            os.makedirs(osp.join(out_dir, folder), exist_ok=True)
        jobs = [(out_dir, seed, split_id, aux, size, i) for i in range(num)]
        bar = dict(total=num, desc=f'synthetic {split}', disable=not progress)
        if workers > 0 and num > 1:
            with Pool(min(workers, num)) as pool:
                results[split] = list(tqdm(pool.imap(_make_sample, jobs, chunksize=4), **bar))
        else:
            results[split] = [_make_sample(job) for job in tqdm(jobs, **bar)]

    categories = [
        dict(id=i, name=name, supercategory=name,
             isthing=int(name in SYNTHETIC_METAINFO['thing_classes']),
             color=list(SYNTHETIC_METAINFO['palette'][i - 1]))
        for i, name in enumerate(SYNTHETIC_METAINFO['classes'], start=1)
    ]
    summary: Dict[str, object] = dict(out_dir=out_dir, aux=aux, size=size)
    for split in SPLITS:
        images, pan_anns, inst_anns = [], [], []
        counts = {c['name']: 0 for c in categories}
        areas: Dict[str, List[int]] = {c['name']: [] for c in categories}
        for img_id, r in enumerate(results[split]):
            images.append(dict(id=img_id, file_name=r['stem'] + '.png', width=size, height=size,
                               condition=r['condition']))
            pan_anns.append(dict(image_id=img_id, file_name=r['stem'] + '.png',
                                 segments_info=r['segments']))
            for inst in r['instances']:
                inst_anns.append(dict(inst, id=len(inst_anns) + 1, image_id=img_id))
            for seg in r['segments']:
                counts[categories[seg['category_id'] - 1]['name']] += 1
                areas[categories[seg['category_id'] - 1]['name']].append(seg['area'])
        atomic_write_json(json_paths[f'instances_{split}'],
                    dict(images=images, annotations=inst_anns,
                         categories=[c for c in categories if c['isthing']]))
        atomic_write_json(json_paths[f'panoptic_{split}'],
                    dict(images=images, annotations=pan_anns, categories=categories))
        summary[split] = dict(images=len(images), segments=counts,
                              statistics=_segment_statistics(areas, len(images)),
                              conditions={c: sum(r['condition'] == c for r in results[split])
                                          for c in CONDITIONS})

    sums, sq_sums, count = (sum(r[key] for r in results['train'])
                            for key in ('sums', 'sq_sums', 'count'))
    mean = sums / count
    std = np.sqrt(np.maximum(sq_sums / count - mean**2, 0))
    stats = {
        'optical': dict(mean=mean[:3].round(4).tolist(), std=std[:3].round(4).tolist()),
        aux: dict(mean=mean[3:].round(4).tolist(), std=std[3:].round(4).tolist())
    }
    atomic_write_json(json_paths['modality_stats'], stats)
    summary['modality_stats'] = stats
    summary['paths'] = dict(
        {m: osp.join(out_dir, m) for m in ('optical', aux)},
        panoptic_seg={s: osp.join(ann_dir, f'panoptic_{s}') for s in SPLITS}, **json_paths)
    return summary


@DATASETS.register_module()
class SyntheticRSDataset(MultiModalCocoPanopticDataset):
    """The embedded synthetic dataset written by :func:`generate_synthetic`."""
    METAINFO = SYNTHETIC_METAINFO
