"""Convert SemCity Toulouse to the multimodal COCO-panoptic layout (optical + NIR patches).

Paper (sec. IV-A-2): the four tiles with building instances (03, 04, 07, 08) are cut into
128x128 patches, optical + NIR; train = tiles 04, 08, test = tiles 03, 07 (written as ``val``);
panoptic = semantic labels + building instances. Assumptions about the raw release:

* ``img_multispec_05/TLS_BDSD_M/TLS_BDSD_M_XX.tif``: 8 WorldView-2 bands (uint16) in the order
  coastal, blue, green, yellow, red, red-edge, NIR1, NIR2. Optical = bands 5/3/2 (1-indexed,
  true RGB), NIR = band 7 (NIR1).
* Semantic labels: ``semantic_05/TLS_indMap/TLS_indMap_XX_<annotator>.tif`` (index 0-7) or
  ``semantic_05/TLS_GT/TLS_GT_XX_<annotator>.tif`` (RGB colours); classes and colours in
  :data:`pmtseg_mm.datasets.semcity_toulouse.SEMCITY_RAW_CLASSES`, 0 / white = void.
  Tiles 03/04/07/08 carry several annotations; by default (``--annotator auto``) the
  highest-numbered one found is used, as public panoptic loaders of these tiles pair the
  instance maps with the later (non-``_1``) annotation.
* Instances: ``instances_building_05/TLS_instances_building_indMap/
  TLS_instances_building_indMap_XX.tif``, integer ids (0 = none; an RGB map is read as
  R + 256 G + 65536 B).

Panoptic composition per patch: one stuff segment per class from the semantic map, then each
building instance on top (an instance wins where the semantic map disagrees); semantic
building pixels outside every instance become one crowd building segment
(``--unmatched-building crowd``, kept in the semantic target but ignored as an instance) or
void. Car is stuff (no car instances in the paper) unless ``--car-instances`` turns its
8-connected components into car things (then set the dataset's ``metainfo`` to
``semcity_metainfo(car_is_thing=True)``). Void -> unlabeled (id 0).

Images: a per-tile, per-band 2-98 % percentile stretch to 8 bit (PNG), or the raw uint16 values
as TIFF with ``--keep-16bit``. Patches follow a non-overlapping grid from the top-left corner;
the remainder at the right/bottom edges is dropped (floor(H/128) x floor(W/128) per tile).
"""
import argparse
import glob
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from _common import (ConversionError, Segment, add_common_args, band_partial,
                     categories_from_metainfo, cli, maybe_write, panoptic_record, parallel_map,
                     rasterize, read_image, split_guard, write_modality_stats, write_split_json)
from pmtseg_mm.datasets.semcity_toulouse import SEMCITY_RAW_CLASSES, semcity_metainfo

RGB_BANDS = (4, 2, 1)  # 0-indexed red, green, blue of the 8 WorldView-2 bands
NIR_BAND = 6  # NIR1
STRETCH_PERCENTILES = (2.0, 98.0)
BUILDING, CAR = 2, 5  # raw label indices


def _tile_files(src: str, tile: str, label_format: str, annotator: str) -> Dict[str, str]:
    image = osp.join(src, 'img_multispec_05', 'TLS_BDSD_M', f'TLS_BDSD_M_{tile}.tif')
    folder, prefix = (('TLS_indMap', 'TLS_indMap') if label_format == 'index' else
                      ('TLS_GT', 'TLS_GT'))
    label_dir = osp.join(src, 'semantic_05', folder)
    if annotator in ('auto', 'first'):
        found = {}
        for path in glob.glob(osp.join(label_dir, f'{prefix}_{tile}*.tif')):
            match = re.fullmatch(rf'{prefix}_{tile}(?:_(\d+))?\.tif', osp.basename(path))
            if match:
                found[int(match.group(1) or 0)] = path
        if not found:
            raise ConversionError(f'tile {tile}: no {label_format} label map '
                                  f'{label_dir}/{prefix}_{tile}_<annotator>.tif found')
        label = found[max(found) if annotator == 'auto' else min(found)]
    else:
        label = osp.join(label_dir, f'{prefix}_{tile}_{annotator}.tif')
    instances = osp.join(src, 'instances_building_05', 'TLS_instances_building_indMap',
                         f'TLS_instances_building_indMap_{tile}.tif')
    files = dict(image=image, label=label, instances=instances)
    for path in files.values():
        if not osp.isfile(path):
            raise ConversionError(f'tile {tile}: missing input file {path}')
    return files


def _read_labels(path: str, label_format: str, shape: Sequence[int]) -> np.ndarray:
    """Raw label index map (H, W) uint8, checked against the image size and the class list."""
    array = read_image(path)
    if array.shape[:2] != tuple(shape):
        raise ConversionError(f'label map {path} is {array.shape[0]}x{array.shape[1]} but its '
                              f'image is {shape[0]}x{shape[1]} (HxW)')
    if label_format == 'index':
        index = array[..., 0].astype(np.int64)
        bad = np.argwhere((index < 0) | (index >= len(SEMCITY_RAW_CLASSES)))
        if len(bad):
            y, x = bad[0]
            raise ConversionError(f'label map {path}: unknown class index {index[y, x]} at pixel '
                                  f'(x={x}, y={y}); expected 0..{len(SEMCITY_RAW_CLASSES) - 1}')
        return index.astype(np.uint8)
    if array.shape[2] < 3:
        raise ConversionError(f'colour label map {path} has {array.shape[2]} band(s), expected RGB')
    rgb = array[..., :3].astype(np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    index = np.full(code.shape, 255, np.uint8)
    for i, (_, (r, g, b)) in enumerate(SEMCITY_RAW_CLASSES):
        index[code == ((r << 16) | (g << 8) | b)] = i
    bad = np.argwhere(index == 255)
    if len(bad):
        y, x = bad[0]
        raise ConversionError(f'label map {path}: unknown colour {tuple(int(v) for v in rgb[y, x])} '
                              f'at pixel (x={x}, y={y}); known colours: '
                              f'{[c for _, c in SEMCITY_RAW_CLASSES]}')
    return index


def _read_instances(path: str, shape: Sequence[int]) -> np.ndarray:
    array = read_image(path)
    if array.shape[:2] != tuple(shape):
        raise ConversionError(f'instance map {path} is {array.shape[0]}x{array.shape[1]} but its '
                              f'image is {shape[0]}x{shape[1]} (HxW)')
    if array.shape[2] >= 3:
        a = array[..., :3].astype(np.int64)
        return a[..., 0] + 256 * a[..., 1] + 65536 * a[..., 2]
    return array[..., 0].astype(np.int64)


def _stretch(bands: np.ndarray) -> np.ndarray:
    """Per-band 2-98 % percentile stretch of a whole tile (H, W, C) to uint8."""
    low, high = np.percentile(bands, STRETCH_PERCENTILES, axis=(0, 1))
    scaled = (bands.astype(np.float32) - low) / np.maximum(high - low, 1e-6) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _patch_segments(labels: np.ndarray, inst: np.ndarray, cat_ids: Dict[int, int],
                    car_instances: bool, unmatched: str) -> List[Segment]:
    segments = []
    instance_classes = {BUILDING, CAR} if car_instances else {BUILDING}
    for raw, cat in cat_ids.items():
        if raw in instance_classes:
            continue
        mask = labels == raw
        if mask.any():
            segments.append(Segment(cat, mask))
    if car_instances:
        count, comps = cv2.connectedComponents((labels == CAR).astype(np.uint8), connectivity=8)
        segments += [Segment(cat_ids[CAR], comps == i) for i in range(1, count)]
    orphan = (labels == BUILDING) & (inst == 0)
    if unmatched == 'crowd' and orphan.any():
        segments.append(Segment(cat_ids[BUILDING], orphan, iscrowd=1))
    segments += [Segment(cat_ids[BUILDING], inst == i) for i in np.unique(inst) if i != 0]
    return segments


def convert_tile(job: dict) -> dict:
    """Cut one tile into patches; write images and panoptic PNGs; return records (+ stats)."""
    files, out, split, tile = job['files'], job['out'], job['split'], job['tile']
    image = read_image(files['image'])
    if image.shape[2] < 8:
        raise ConversionError(f'{files["image"]} has {image.shape[2]} band(s); expected the 8 '
                              'WorldView-2 bands of TLS_BDSD_M')
    h, w = image.shape[:2]
    labels = _read_labels(files['label'], job['label_format'], (h, w))
    inst = _read_instances(files['instances'], (h, w))
    optical, nir = image[..., list(RGB_BANDS)], image[..., [NIR_BAND]]
    if not job['keep_16bit']:
        optical, nir = _stretch(optical), _stretch(nir)
    ext = '.tif' if job['keep_16bit'] else '.png'
    ps = job['patch_size']
    records, stats = [], dict(optical=[], nir=[])
    for r in range(h // ps):
        for c in range(w // ps):
            win = np.s_[r * ps:(r + 1) * ps, c * ps:(c + 1) * ps]
            stem = f'TLS_{tile}_r{r:02d}_c{c:02d}'
            maybe_write(osp.join(out, 'optical', split, stem + ext), lambda: optical[win],
                        job['skip_existing'])
            maybe_write(osp.join(out, 'nir', split, stem + ext), lambda: nir[win],
                        job['skip_existing'])
            segments = _patch_segments(labels[win], inst[win], job['cat_ids'],
                                       job['car_instances'], job['unmatched_building'])
            pan, meta = rasterize((ps, ps), segments, job['thing_ids'])
            records.append(
                panoptic_record(stem + '.png', pan, meta, job['thing_ids'],
                                osp.join(out, 'annotations', f'panoptic_{split}', stem + '.png')))
            if job['with_stats']:
                stats['optical'].append(band_partial(optical[win]))
                stats['nir'].append(band_partial(nir[win]))
    return dict(records=records, stats=stats)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(parser)
    parser.add_argument('--tiles-train', nargs='+', default=['04', '08'])
    parser.add_argument('--tiles-val', nargs='+', default=['03', '07'])
    parser.add_argument('--patch-size', type=int, default=128)
    parser.add_argument('--annotator', default='auto',
                        help="annotator suffix of the label maps: 'auto' (highest found), "
                        "'first' (lowest found) or a number such as 3")
    parser.add_argument('--label-format', choices=['index', 'colour'], default='index')
    parser.add_argument('--keep-16bit', action='store_true',
                        help='write the raw uint16 bands as TIFF instead of stretched 8-bit PNG')
    parser.add_argument('--car-instances', action='store_true',
                        help='make car a thing (8-connected components as instances)')
    parser.add_argument('--unmatched-building', choices=['crowd', 'void'], default='crowd',
                        help='semantic building pixels outside every building instance')
    args = parser.parse_args(argv)
    if args.patch_size < 1:
        parser.error(f'--patch-size must be positive, got {args.patch_size}')
    args.tiles_train = [f'{int(t):02d}' for t in args.tiles_train]
    args.tiles_val = [f'{int(t):02d}' for t in args.tiles_val]
    overlap = set(args.tiles_train) & set(args.tiles_val)
    if overlap:
        parser.error(f'tiles {sorted(overlap)} are in both --tiles-train and --tiles-val')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert; returns ``{split: number of patches}``."""
    args = parse_args(argv)
    metainfo = semcity_metainfo(car_is_thing=args.car_instances)
    categories = categories_from_metainfo(metainfo)
    name_to_id = {c['name']: c['id'] for c in categories}
    cat_ids = {raw: name_to_id[name] for raw, (name, _) in enumerate(SEMCITY_RAW_CLASSES) if raw}
    thing_ids = [c['id'] for c in categories if c['isthing']]
    splits = dict(train=args.tiles_train, val=args.tiles_val)
    jobs = {
        split: [
            dict(files=_tile_files(args.src, tile, args.label_format, args.annotator), out=args.out,
                 split=split, tile=tile, label_format=args.label_format,
                 keep_16bit=args.keep_16bit, patch_size=args.patch_size, cat_ids=cat_ids,
                 thing_ids=thing_ids, car_instances=args.car_instances,
                 unmatched_building=args.unmatched_building, skip_existing=args.skip_existing,
                 with_stats=split == 'train') for tile in tiles
        ]
        for split, tiles in splits.items()
    }
    counts = {}
    for split, split_jobs in jobs.items():
        folders = [osp.join(args.out, m, split) for m in ('optical', 'nir')]
        folders.append(osp.join(args.out, 'annotations', f'panoptic_{split}'))
        with split_guard(args.out, split, folders, args.skip_existing):
            results = parallel_map(convert_tile, split_jobs, args.workers, f'SemCity {split} tiles')
            records = [rec for res in results for rec in res['records']]
            write_split_json(args.out, split, categories, records)
        counts[split] = len(records)
        if split == 'train':
            write_modality_stats(args.out, {
                m: [p for res in results for p in res['stats'][m]] for m in ('optical', 'nir')
            })
    print(f'SemCity Toulouse -> {args.out}: ' + ', '.join(f'{s} {n} patches'
                                                          for s, n in counts.items()))
    return counts


if __name__ == '__main__':
    cli(main)
