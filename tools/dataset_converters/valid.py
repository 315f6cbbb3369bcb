"""Convert VALID (virtual aerial, optical + depth, panoptic) to the multimodal COCO-panoptic
layout (paper sec. IV-A-1: 6690 pairs, 30 classes = 17 thing + 13 stuff, split 3345/1115/2230,
resized to 512x512).

Assumptions about the raw release (every one is an option):

* Images: ``<src>/images/<scene>/<altitude>/<img>.png`` (``--image-root``, ``--image-glob``).
* Annotations: one JSON per image next to it (``--ann-template '{img_dir}/{stem}.json'``),
  either a list of segments or a dict holding that list under ``segments``,
  ``segments_info``, ``annotations`` or ``objects``. A segment has ``category_id`` (1..30, order
  of :data:`pmtseg_mm.datasets.valid.VALID_RAW_CLASSES`) and/or ``category_name`` (checked
  against each other) and ``segmentation`` (polygons or RLE, decoded with pycocotools);
  ``id``, ``hbbox`` and ``obbox`` are not needed.
* Depth: ``--depth-template 'depth/{rel_dir}/{stem}.png'``; ``--depth-format gray`` reads a
  one-band image/TIFF/``.npy``/``.pfm`` as is, ``rgb24`` decodes 8-bit RGB as
  (R + 256 G + 65536 B) / (256^3 - 1); the result times ``--depth-scale`` is written as float32
  TIFF (metres when the scale is right).
* Thing/stuff split: not published; ``--stuff-classes`` (default
  :data:`pmtseg_mm.datasets.valid.VALID_DEFAULT_STUFF`, 13 classes, rationale there). A
  non-default split needs ``metainfo=valid_metainfo(...)`` in the dataset config.

Panoptic composition: stuff segments first (all segments of one stuff class merge into one),
things on top in file order. Resizing (``--size``, 0 keeps 1024): optical with area
interpolation, the panoptic id map with nearest neighbour, depth with ``--depth-interp``
(nearest by default: no depth values invented across object edges). Split: ``--split-file``
(JSON ``{"train": [...], "val": [...], "test": [...]}`` listing image paths relative to the
image root) or a seeded shuffle (``--seed``) into ``--split-sizes`` proportions.
"""
import argparse
import glob
import json
import os.path as osp
import random
import re
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from _common import (ConversionError, Segment, add_common_args, band_partial,
                     categories_from_metainfo, cli, decode_segmentation, maybe_write, normalise,
                     panoptic_record, parallel_map, rasterize, read_image, split_guard,
                     write_modality_stats, write_split_json)
from pmtseg_mm.datasets.valid import VALID_DEFAULT_STUFF, VALID_RAW_CLASSES, valid_metainfo

SPLITS = ('train', 'val', 'test')
SEGMENT_KEYS = ('segments', 'segments_info', 'annotations', 'objects')
INTERP = dict(nearest=cv2.INTER_NEAREST, linear=cv2.INTER_LINEAR, area=cv2.INTER_AREA)


def read_pfm(path: str) -> np.ndarray:
    """Portable float map (one band ``Pf`` or three ``PF``), rows stored bottom-up."""
    with open(path, 'rb') as f:
        kind = f.readline().strip()
        if kind not in (b'Pf', b'PF'):
            raise ConversionError(f'{path}: not a PFM file (header {kind!r})')
        width, height = (int(v) for v in f.readline().split())
        scale = float(f.readline().strip())
        bands = 1 if kind == b'Pf' else 3
        data = np.frombuffer(f.read(), '<f4' if scale < 0 else '>f4')
    if data.size != width * height * bands:
        raise ConversionError(f'{path}: PFM holds {data.size} values, expected '
                              f'{width}x{height}x{bands}')
    return np.flipud(data.reshape(height, width, bands)).astype(np.float32)


def read_depth(path: str, depth_format: str, scale: float) -> np.ndarray:
    if not osp.isfile(path):
        raise ConversionError(f'missing depth file: {path}')
    if path.endswith('.npy'):
        raw = np.load(path)
        raw = raw[..., None] if raw.ndim == 2 else raw
    elif path.endswith('.pfm'):
        raw = read_pfm(path)
    else:
        raw = read_image(path)
    if depth_format == 'rgb24':
        if raw.shape[2] < 3 or raw.dtype != np.uint8:
            raise ConversionError(f'{path}: --depth-format rgb24 needs 8-bit RGB, got '
                                  f'{raw.shape[2]} band(s) of {raw.dtype}')
        rgb = raw[..., :3].astype(np.float64)
        depth = (rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]) / (256**3 - 1)
    else:
        if raw.shape[2] != 1:
            raise ConversionError(f'{path}: --depth-format gray needs one band, got '
                                  f'{raw.shape[2]} (use --depth-format rgb24 for encoded RGB)')
        depth = raw[..., 0].astype(np.float64)
    return (depth * scale).astype(np.float32)


def read_segments(path: str, height: int, width: int, cat_ids: Dict[str, int],
                  thing_ids: Sequence[int]) -> List[Segment]:
    if not osp.isfile(path):
        raise ConversionError(f'missing annotation file: {path}')
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise ConversionError(f'cannot read annotation file {path}: {err}') from None
    if isinstance(data, dict):
        key = next((k for k in SEGMENT_KEYS if k in data), None)
        if key is None:
            raise ConversionError(f'{path}: no segment list under any of {SEGMENT_KEYS}; keys are '
                                  f'{sorted(data)}')
        data = data[key]
    stuff, things = [], []
    for i, seg in enumerate(data):
        where = f'{path} segment {seg.get("id", i)}'
        raw_id, raw_name = seg.get('category_id'), seg.get('category_name')
        if raw_id is not None:
            if not 1 <= int(raw_id) <= len(VALID_RAW_CLASSES):
                raise ConversionError(f'{where}: category_id {raw_id} is not a VALID category '
                                      f'(1..{len(VALID_RAW_CLASSES)})')
            name = VALID_RAW_CLASSES[int(raw_id) - 1]
            if raw_name is not None and normalise(raw_name) != normalise(name):
                raise ConversionError(f'{where}: category_name {raw_name!r} does not match '
                                      f'category_id {raw_id} ({name!r})')
        elif raw_name is not None:
            name = next((c for c in VALID_RAW_CLASSES if normalise(c) == normalise(raw_name)),
                        None)
            if name is None:
                raise ConversionError(f'{where}: category_name {raw_name!r} is not one of '
                                      f'{VALID_RAW_CLASSES}')
        else:
            raise ConversionError(f'{where}: neither category_id nor category_name')
        mask = decode_segmentation(seg['segmentation'], height, width, where)
        segment = Segment(cat_ids[name], mask, int(seg.get('iscrowd', 0)))
        (things if segment.category_id in thing_ids else stuff).append(segment)
    return stuff + things


def convert_image(job: dict) -> dict:
    image = read_image(job['image'])
    if image.shape[2] < 3:
        raise ConversionError(f'{job["image"]}: expected an RGB image, got {image.shape[2]} band(s)')
    optical = image[..., :3]
    h, w = optical.shape[:2]
    depth = read_depth(job['depth'], job['depth_format'], job['depth_scale'])
    if depth.shape != (h, w):
        raise ConversionError(f'depth {job["depth"]} is {depth.shape[0]}x{depth.shape[1]} but '
                              f'image {job["image"]} is {h}x{w} (HxW)')
    segments = read_segments(job['ann'], h, w, job['cat_ids'], job['thing_ids'])
    pan, meta = rasterize((h, w), segments, job['thing_ids'])
    size = job['size']
    if size and (h, w) != (size, size):
        optical = cv2.resize(optical, (size, size), interpolation=cv2.INTER_AREA)
        depth = cv2.resize(depth, (size, size), interpolation=INTERP[job['depth_interp']])
        pan = cv2.resize(pan, (size, size), interpolation=cv2.INTER_NEAREST)
    out, split, stem = job['out'], job['split'], job['stem']
    maybe_write(osp.join(out, 'optical', split, stem + '.png'), lambda: optical, job['skip_existing'])
    maybe_write(osp.join(out, 'depth', split, stem + '.tif'), lambda: depth, job['skip_existing'])
    record = panoptic_record(stem + '.png', pan, meta, job['thing_ids'],
                             osp.join(out, 'annotations', f'panoptic_{split}', stem + '.png'))
    stats = dict(optical=band_partial(optical), depth=band_partial(depth[..., None])) \
        if job['with_stats'] else None
    return dict(record=record, stats=stats)


def assign_splits(rel_paths: List[str], args: argparse.Namespace) -> Dict[str, List[str]]:
    if args.split_file:
        try:
            with open(args.split_file) as f:
                listed = json.load(f)
        except (OSError, ValueError) as err:
            raise ConversionError(f'cannot read split file {args.split_file}: {err}') from None
        known, seen, splits = set(rel_paths), set(), {}
        for split in SPLITS:
            entries = [osp.normpath(p) for p in listed.get(split, [])]
            unknown = sorted(set(entries) - known)
            if unknown:
                raise ConversionError(f'split file {args.split_file}: {split} lists images not '
                                      f'found under the image root: {unknown[:5]}')
            twice = sorted(seen & set(entries))
            if twice:
                raise ConversionError(f'split file {args.split_file}: {twice[:5]} are in more '
                                      'than one split')
            seen |= set(entries)
            splits[split] = entries
        return splits
    order = sorted(rel_paths)
    random.Random(args.seed).shuffle(order)
    total = sum(args.split_sizes)
    n_train = round(len(order) * args.split_sizes[0] / total)
    n_val = round(len(order) * args.split_sizes[1] / total)
    return dict(train=order[:n_train], val=order[n_train:n_train + n_val],
                test=order[n_train + n_val:])


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    add_common_args(parser)
    parser.add_argument('--image-root', default='images')
    parser.add_argument('--image-glob', default='*/*/*.png',
                        help='glob of the optical images relative to --image-root')
    parser.add_argument('--ann-template', default='{img_dir}/{stem}.json',
                        help='per-image JSON; fields {src}, {img_dir}, {rel_dir}, {stem}')
    parser.add_argument('--depth-template', default='{src}/depth/{rel_dir}/{stem}.png',
                        help='depth file; fields {src}, {img_dir}, {rel_dir}, {stem}')
    parser.add_argument('--depth-format', choices=['gray', 'rgb24'], default='gray')
    parser.add_argument('--depth-scale', type=float, default=1.0,
                        help='multiplier from the stored depth value to metres')
    parser.add_argument('--depth-interp', choices=sorted(INTERP), default='nearest')
    parser.add_argument('--size', type=int, default=512, help='output side (0 = keep)')
    parser.add_argument('--stuff-classes', nargs='+', default=list(VALID_DEFAULT_STUFF))
    parser.add_argument('--split-file', default=None)
    parser.add_argument('--split-sizes', type=int, nargs=3, default=[3345, 1115, 2230],
                        metavar=('TRAIN', 'VAL', 'TEST'),
                        help='proportions of the seeded split (the paper\'s sizes)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.stuff_classes) - set(VALID_RAW_CLASSES))
    if unknown:
        parser.error(f'--stuff-classes {unknown} are not VALID categories: {VALID_RAW_CLASSES}')
    if args.size < 0 or min(args.split_sizes) < 0 or sum(args.split_sizes) == 0:
        parser.error('--size and --split-sizes must be non-negative (split sizes not all 0)')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert; returns ``{split: number of images}``."""
    args = parse_args(argv)
    metainfo = valid_metainfo(args.stuff_classes)
    categories = categories_from_metainfo(metainfo)
    cat_ids = {c['name']: c['id'] for c in categories}
    thing_ids = [c['id'] for c in categories if c['isthing']]
    image_root = osp.join(args.src, args.image_root)
    images = sorted(glob.glob(osp.join(image_root, args.image_glob)))
    if not images:
        raise ConversionError(f'no images match {osp.join(image_root, args.image_glob)}')
    by_rel = {osp.normpath(osp.relpath(p, image_root)): p for p in images}
    stems: Dict[str, str] = {}
    for rel in by_rel:
        stem = re.sub(r'[^A-Za-z0-9._-]+', '_', osp.splitext(rel)[0])
        if stem in stems:
            raise ConversionError(f'images {stems[stem]!r} and {rel!r} map to the same output '
                                  f'name {stem!r}')
        stems[stem] = rel
    out_stems = {rel: stem for stem, rel in stems.items()}
    splits = assign_splits(list(by_rel), args)
    counts = {}
    for split, rel_paths in splits.items():
        jobs = []
        for rel in rel_paths:
            path = by_rel[rel]
            stem = osp.splitext(osp.basename(path))[0]
            fields = dict(src=args.src, img_dir=osp.dirname(path), rel_dir=osp.dirname(rel),
                          stem=stem)
            jobs.append(
                dict(image=path, ann=args.ann_template.format(**fields),
                     depth=args.depth_template.format(**fields),
                     stem=out_stems[rel],
                     out=args.out, split=split, cat_ids=cat_ids, thing_ids=thing_ids,
                     depth_format=args.depth_format, depth_scale=args.depth_scale,
                     depth_interp=args.depth_interp, size=args.size,
                     skip_existing=args.skip_existing, with_stats=split == 'train'))
        folders = [osp.join(args.out, m, split) for m in ('optical', 'depth')]
        folders.append(osp.join(args.out, 'annotations', f'panoptic_{split}'))
        with split_guard(args.out, split, folders, args.skip_existing):
            results = parallel_map(convert_image, jobs, args.workers, f'VALID {split}')
            write_split_json(args.out, split, categories, [r['record'] for r in results])
        counts[split] = len(results)
        if split == 'train' and results:
            write_modality_stats(args.out, {
                m: [r['stats'][m] for r in results] for m in ('optical', 'depth')
            })
    print(f'VALID -> {args.out}: ' + ', '.join(f'{s} {n} images' for s, n in counts.items()))
    return counts


if __name__ == '__main__':
    cli(main)
