"""Convert VALID (virtual aerial, optical + depth, panoptic) to the multimodal COCO-panoptic
layout (paper sec. IV-A-1: 6690 pairs, 30 classes = 17 thing + 13 stuff, split 3345/1115/2230,
resized to 512x512).

Raw layout (every part is an option; docs/dataset_prepare.md says what is verified):

* Images: ``<src>/images/<scene>/<altitude>/<img>.png`` (``--image-root``, ``--image-glob``).
* Annotations: one JSON per image. As released (read so by aitlas's VALID loader) they lie in a
  separate folder, ``--ann-dir``, with any file names; each holds ``file_name``
  (``images/<scene>/<altitude>/<img>``, matched to the image) and the segment list under
  ``detection``. Without ``--ann-dir``: ``--ann-template`` (default: a JSON next to each image).
  The segment list may also be a bare list or sit under ``segments``, ``segments_info``,
  ``annotations`` or ``objects``. A segment has ``category_id`` (1..30, order of
  :data:`pmtseg_mm.datasets.valid.VALID_RAW_CLASSES`; 0 = ``no-data``) and/or ``category_name``
  (checked against each other) and ``segmentation`` (polygons or RLE, decoded with pycocotools);
  ``id``, ``hbbox`` and ``obbox`` are not needed. ``no-data`` segments become void.
* Depth: ``--depth-template``; ``--depth-format gray`` reads a one-band image/TIFF/``.npy``/
  ``.pfm``, ``rgb24`` decodes 8-bit RGB as (R + 256 G + 65536 B) / (256^3 - 1); times
  ``--depth-scale``. ``--depth-encoding metres`` takes that as depth in metres,
  ``disparity`` as a disparity in pixels turned into depth = baseline * focal / disparity
  (``--baseline`` metres, ``--focal-length`` pixels or ``--hfov`` degrees). The file type and
  unit of the release's "binocular depth maps" are not established: the converter stops when a
  map's median depth leaves ``--depth-range`` (default 1-1000 m; the views are taken 20-100 m
  above ground). Written as float32 TIFF in metres. ``--inspect-depth N`` prints what the
  options make of the first N maps and writes nothing.
* Thing/stuff split: not published; ``--stuff-classes`` (default
  :data:`pmtseg_mm.datasets.valid.VALID_DEFAULT_STUFF`, 13 classes, rationale there). A
  non-default split needs ``metainfo=valid_metainfo(...)`` in the dataset config.

Panoptic composition: stuff segments first (all segments of one stuff class merge into one),
things on top in file order, ``no-data`` segments last (void). Resizing (``--size``, 0 keeps
1024): optical with area interpolation, the panoptic id map with nearest neighbour, depth with
``--depth-interp`` (nearest by default: no depth values invented across object edges).
Split: no official list was found. ``--split-file`` gives one (a JSON
``{"train": [...], "val": [...], "test": [...]}``, a CSV with a ``split`` column, or
``train=FILE val=FILE test=FILE`` lists, e.g. aitlas-style CSVs of scene, altitude, image);
otherwise a seeded shuffle (``--seed``) in ``--split-sizes`` proportions.
"""
import argparse
import csv
import glob
import json
import math
import os.path as osp
import random
import re
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from _common import (VOID_ID, ConversionError, Segment, add_common_args, band_partial,
                     categories_from_metainfo, cli, decode_segmentation, maybe_write, normalise,
                     panoptic_record, parallel_map, rasterize, read_image, split_guard,
                     write_modality_stats, write_split_json)
from pmtseg_mm.datasets.valid import VALID_DEFAULT_STUFF, VALID_RAW_CLASSES, valid_metainfo

SPLITS = ('train', 'val', 'test')
SEGMENT_KEYS = ('detection', 'segments', 'segments_info', 'annotations', 'objects')
NO_DATA = 'no-data'  # raw label 0 of the release
INTERP = dict(nearest=cv2.INTER_NEAREST, linear=cv2.INTER_LINEAR, area=cv2.INTER_AREA)
PATH_COLUMNS = ('path', 'file_name', 'image_path', 'filename')
SCENE_COLUMNS = ('scene', 'altitude', 'image')


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
    """The stored value of a depth/disparity map times ``scale``, float64 (H, W)."""
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
        value = (rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]) / (256**3 - 1)
    else:
        if raw.shape[2] != 1:
            raise ConversionError(f'{path}: --depth-format gray needs one band, got '
                                  f'{raw.shape[2]} (use --depth-format rgb24 for encoded RGB)')
        value = raw[..., 0].astype(np.float64)
    return value * scale


def focal_length_px(width: int, focal_length: Optional[float], hfov: Optional[float]) -> float:
    """Focal length in pixels: given, or from the horizontal field of view and the map width."""
    if focal_length:
        return focal_length
    return width / (2.0 * math.tan(math.radians(hfov) / 2.0))


def to_metres(value: np.ndarray, path: str, job: dict) -> np.ndarray:
    """Depth in metres from the scaled stored value; stops on values implausible for an aerial
    view (non-finite, negative, non-positive disparity, median outside ``depth_range``)."""
    encoding = job['depth_encoding']
    options = f'--depth-encoding {encoding} --depth-scale {job["depth_scale"]:g}'
    if encoding == 'disparity':
        focal = focal_length_px(value.shape[1], job['focal_length'], job['hfov'])
        options += f' --baseline {job["baseline"]:g} (focal length {focal:.6g} px)'
        bad = ~(value > 0)
        if bad.any():
            y, x = np.argwhere(bad)[0]
            raise ConversionError(
                f'{path}: {int(bad.sum())} pixel(s) have a disparity <= 0 or NaN (first at '
                f'x={x}, y={y}: {value[y, x]:g}); a disparity map needs positive values '
                '(is it a depth map? then use --depth-encoding metres)')
        depth = job['baseline'] * focal / value
    else:
        depth = value
    bad = ~np.isfinite(depth) | (depth < 0)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise ConversionError(f'{path}: {int(bad.sum())} pixel(s) have a negative or non-finite '
                              f'depth (first at x={x}, y={y}: {depth[y, x]:g}) with {options}')
    low, high = job['depth_range']
    median = float(np.median(depth))
    if not low <= median <= high:
        raise ConversionError(
            f'{path}: median depth {median:.4g} m (min {float(depth.min()):.4g}, max '
            f'{float(depth.max()):.4g}) with {options} is outside the plausible range '
            f'{low:g}-{high:g} m (--depth-range) of views taken 20-100 m above ground; check '
            '--depth-encoding (metres or disparity), --depth-scale and, for disparity, '
            '--baseline and --focal-length/--hfov')
    return depth.astype(np.float32)


def segment_category(seg: dict, where: str, cat_ids: Dict[str, int]) -> int:
    """Output category id of a raw segment, ``VOID_ID`` for ``no-data`` (raw id 0)."""
    raw_id, raw_name = seg.get('category_id'), seg.get('category_name')
    if raw_id is None and raw_name is None:
        raise ConversionError(f'{where}: neither category_id nor category_name')
    if raw_id is not None:
        try:
            raw_id = int(raw_id)
        except (TypeError, ValueError):
            raise ConversionError(f'{where}: category_id {raw_id!r} is not an integer') from None
        if not 0 <= raw_id <= len(VALID_RAW_CLASSES):
            raise ConversionError(f'{where}: category_id {raw_id} is not a VALID category '
                                  f'(0 = {NO_DATA}, 1..{len(VALID_RAW_CLASSES)})')
        name = NO_DATA if raw_id == 0 else VALID_RAW_CLASSES[raw_id - 1]
        if raw_name is not None and normalise(str(raw_name)) != normalise(name):
            raise ConversionError(f'{where}: category_name {raw_name!r} does not match '
                                  f'category_id {raw_id} ({name!r})')
    else:
        name = next((c for c in (NO_DATA, ) + VALID_RAW_CLASSES
                     if normalise(c) == normalise(str(raw_name))), None)
        if name is None:
            raise ConversionError(f'{where}: category_name {raw_name!r} is not one of '
                                  f'{(NO_DATA, ) + VALID_RAW_CLASSES}')
    return VOID_ID if name == NO_DATA else cat_ids[name]


def load_json(path: str, what: str = 'annotation file'):
    if not osp.isfile(path):
        raise ConversionError(f'missing {what}: {path}')
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise ConversionError(f'cannot read {what} {path}: {err}') from None


def read_segments(path: str, height: int, width: int, cat_ids: Dict[str, int],
                  thing_ids: Sequence[int]) -> List[Segment]:
    """Segments in painting order: stuff, things, then ``no-data`` (void)."""
    data = load_json(path)
    if isinstance(data, dict):
        key = next((k for k in SEGMENT_KEYS if k in data), None)
        if key is None:
            raise ConversionError(f'{path}: no segment list under any of {SEGMENT_KEYS}; keys are '
                                  f'{sorted(data)}')
        data = data[key]
    if not isinstance(data, list):
        raise ConversionError(f'{path}: the segment list is a {type(data).__name__}, expected a '
                              'list of segments')
    stuff, things, void = [], [], []
    for i, seg in enumerate(data):
        where = f'{path} segment {seg.get("id", i) if isinstance(seg, dict) else i}'
        if not isinstance(seg, dict) or 'segmentation' not in seg:
            raise ConversionError(f'{where}: expected a dict with a segmentation, got {seg!r:.80}')
        category = segment_category(seg, where, cat_ids)
        mask = decode_segmentation(seg['segmentation'], height, width, where)
        segment = Segment(category, mask, int(seg.get('iscrowd', 0)))
        if category == VOID_ID:
            void.append(segment)
        else:
            (things if category in thing_ids else stuff).append(segment)
    return stuff + things + void


def _file_name_of(path: str) -> Tuple[str, Optional[str]]:
    data = load_json(path)
    name = data.get('file_name') if isinstance(data, dict) else None
    return path, name if isinstance(name, str) else None


def index_ann_dir(ann_dir: str, image_root_name: str, workers: int) -> Dict[str, str]:
    """``{image path relative to the image root: JSON path}`` from the ``file_name`` of every
    JSON under ``ann_dir`` (any depth, any file name)."""
    if not osp.isdir(ann_dir):
        raise ConversionError(f'--ann-dir {ann_dir} is not a folder')
    paths = sorted(glob.glob(osp.join(ann_dir, '**', '*.json'), recursive=True))
    if not paths:
        raise ConversionError(f'--ann-dir {ann_dir} holds no .json file')
    index: Dict[str, str] = {}
    for path, name in parallel_map(_file_name_of, paths, workers, 'VALID annotation index'):
        if name is None:
            raise ConversionError(f'{path}: no "file_name" string (expected '
                                  f'"{image_root_name}/<scene>/<altitude>/<image>")')
        rel = strip_root(name, image_root_name)
        if rel in index:
            raise ConversionError(f'{index[rel]} and {path} both annotate {name!r}')
        index[rel] = path
    return index


def strip_root(name: str, image_root_name: str) -> str:
    """Normalised path relative to the image root (a leading ``<image root>/`` is dropped)."""
    rel = osp.normpath(name.replace('\\', '/')).lstrip('/')
    prefix = osp.normpath(image_root_name) + '/'
    return rel[len(prefix):] if rel.startswith(prefix) else rel


class ImageMatcher:
    """Resolve split-list entries (with or without the image-root prefix or the extension)
    to image paths relative to the image root."""

    def __init__(self, rel_paths: Sequence[str], image_root_name: str):
        self.known = set(rel_paths)
        self.no_ext = {osp.splitext(p)[0]: p for p in rel_paths}
        self.root = image_root_name

    def __call__(self, entry: str) -> Optional[str]:
        rel = strip_root(entry.strip(), self.root)
        if rel in self.known:
            return rel
        return self.no_ext.get(osp.splitext(rel)[0], self.no_ext.get(rel))


def _csv_rows(path: str) -> List[List[str]]:
    try:
        with open(path, newline='', encoding='utf-8-sig') as f:
            return [[c.strip() for c in row] for row in csv.reader(f) if any(c.strip() for c in row)]
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise ConversionError(f'cannot read split file {path}: {err}') from None


def _list_file(path: str, match: ImageMatcher) -> List[str]:
    """Entries of one split's list: CSV rows (scene, altitude, image or one path column; a
    first row that names no image is a header), a JSON list or a text file of paths."""
    if path.lower().endswith('.json'):
        data = load_json(path, 'split file')
        if not isinstance(data, list) or not all(isinstance(e, str) for e in data):
            raise ConversionError(f'split file {path}: expected a JSON list of image paths')
        return data
    if path.lower().endswith('.csv'):
        entries = []
        for i, row in enumerate(_csv_rows(path)):
            if len(row) >= 3:
                entry = '/'.join(row[:3])
            elif len(row) == 1:
                entry = row[0]
            else:
                raise ConversionError(f'split file {path} row {i + 1}: {row} has 2 columns; '
                                      'expected scene, altitude, image or one path column')
            if i == 0 and match(entry) is None:
                continue  # header
            entries.append(entry)
        return entries
    try:
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    except OSError as err:
        raise ConversionError(f'cannot read split file {path}: {err}') from None


def _split_csv(path: str) -> Dict[str, List[str]]:
    """One CSV with a ``split`` column and a path (or scene/altitude/image) column."""
    rows = _csv_rows(path)
    header = [h.lower() for h in rows[0]] if rows else []
    if 'split' not in header:
        raise ConversionError(f'split file {path}: a single CSV needs a header with a "split" '
                              f'column, got {rows[0] if rows else "an empty file"}; or give '
                              'one list per split: --split-file train=A.csv val=B.csv test=C.csv')
    path_col = next((header.index(c) for c in PATH_COLUMNS if c in header), None)
    if path_col is None and not all(c in header for c in SCENE_COLUMNS):
        raise ConversionError(f'split file {path}: needs one of the columns {PATH_COLUMNS} or '
                              f'all of {SCENE_COLUMNS}; header is {rows[0]}')
    listed: Dict[str, List[str]] = {}
    for row in rows[1:]:
        row = row + [''] * (len(header) - len(row))
        entry = row[path_col] if path_col is not None else '/'.join(
            row[header.index(c)] for c in SCENE_COLUMNS)
        listed.setdefault(row[header.index('split')].lower(), []).append(entry)
    return listed


def read_split_file(spec: Sequence[str], match: ImageMatcher) -> Dict[str, List[str]]:
    """``{split: [entries]}`` from ``--split-file`` (see the module docstring)."""
    if len(spec) == 1 and '=' not in spec[0]:
        path = spec[0]
        if path.lower().endswith('.csv'):
            listed = _split_csv(path)
        else:
            listed = load_json(path, 'split file')
            if not isinstance(listed, dict):
                raise ConversionError(f'split file {path}: expected a JSON object '
                                      '{"train": [...], "val": [...], "test": [...]}')
        where = path
    else:
        listed, where = {}, ' '.join(spec)
        for item in spec:
            split, sep, path = item.partition('=')
            if not sep or not path:
                raise ConversionError(f'--split-file {item!r}: expected SPLIT=FILE (e.g. '
                                      'train=train.csv) when more than one file is given')
            listed.setdefault(split, []).extend(_list_file(path, match))
    unknown = sorted(set(listed) - set(SPLITS))
    if unknown:
        raise ConversionError(f'split file {where}: unknown split name(s) {unknown}; expected '
                              f'{SPLITS}')
    return listed


def assign_splits(rel_paths: List[str], args: argparse.Namespace) -> Dict[str, List[str]]:
    if args.split_file:
        match = ImageMatcher(rel_paths, args.image_root)
        listed = read_split_file(args.split_file, match)
        where = ' '.join(args.split_file)
        seen, splits = set(), {}
        for split in SPLITS:
            entries = listed.get(split, [])
            if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
                raise ConversionError(f'split file {where}: {split} must be a list of image '
                                      f'paths, got {entries!r:.80}')
            resolved = [match(e) for e in entries]
            unknown = [e for e, r in zip(entries, resolved) if r is None]
            if unknown:
                raise ConversionError(f'split file {where}: {split} lists {len(unknown)} image(s) '
                                      f'not found under the image root: {unknown[:5]}')
            resolved = list(dict.fromkeys(resolved))
            twice = sorted(seen & set(resolved))
            if twice:
                raise ConversionError(f'split file {where}: {twice[:5]} are in more than one '
                                      'split')
            seen |= set(resolved)
            splits[split] = resolved
        left = len(rel_paths) - len(seen)
        if left:
            print(f'VALID: {left} image(s) are in no split of {where} and are not converted')
        return splits
    order = sorted(rel_paths)
    random.Random(args.seed).shuffle(order)
    total = sum(args.split_sizes)
    n_train = round(len(order) * args.split_sizes[0] / total)
    n_val = round(len(order) * args.split_sizes[1] / total)
    return dict(train=order[:n_train], val=order[n_train:n_train + n_val],
                test=order[n_train + n_val:])


def convert_image(job: dict) -> dict:
    image = read_image(job['image'])
    if image.shape[2] < 3:
        raise ConversionError(f'{job["image"]}: expected an RGB image, got {image.shape[2]} band(s)')
    optical = image[..., :3]
    h, w = optical.shape[:2]
    value = read_depth(job['depth'], job['depth_format'], job['depth_scale'])
    if value.shape != (h, w):
        raise ConversionError(f'depth {job["depth"]} is {value.shape[0]}x{value.shape[1]} but '
                              f'image {job["image"]} is {h}x{w} (HxW)')
    depth = to_metres(value, job['depth'], job)
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


def inspect_depth(args: argparse.Namespace, paths: Sequence[str], image_root: str) -> dict:
    """Print the stored range of the first depth maps and what the options make of it, so the
    encoding can be checked against the altitude folders before a conversion; writes nothing."""
    job = dict(depth_encoding=args.depth_encoding, depth_scale=args.depth_scale,
               baseline=args.baseline, focal_length=args.focal_length, hfov=args.hfov,
               depth_range=tuple(args.depth_range))
    for path in paths:
        rel = osp.relpath(path, image_root)
        stem = osp.splitext(osp.basename(path))[0]
        depth_path = args.depth_template.format(src=args.src, img_dir=osp.dirname(path),
                                                rel_dir=osp.dirname(rel), stem=stem)
        try:
            value = read_depth(depth_path, args.depth_format, 1.0)
            line = (f'{depth_path}: stored min {value.min():.6g}, median {np.median(value):.6g}, '
                    f'max {value.max():.6g} ({args.depth_format})')
            depth = to_metres(value * args.depth_scale, depth_path, job)
            line += (f' -> depth min {depth.min():.4g}, median {np.median(depth):.4g}, max '
                     f'{depth.max():.4g} m')
        except ConversionError as err:
            line = f'{err}'
        print(f'{rel}: {line}')
    return dict(inspected=len(paths))


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    add_common_args(parser)
    parser.add_argument('--image-root', default='images')
    parser.add_argument('--image-glob', default='*/*/*.png',
                        help='glob of the optical images relative to --image-root')
    parser.add_argument('--ann-dir', default=None,
                        help='folder (relative to --src or absolute) of per-image JSONs matched '
                        'to the images by their "file_name" (the release layout)')
    parser.add_argument('--ann-template', default='{img_dir}/{stem}.json',
                        help='per-image JSON when no --ann-dir; fields {src}, {img_dir}, '
                        '{rel_dir}, {stem}')
    parser.add_argument('--depth-template', default='{src}/depth/{rel_dir}/{stem}.png',
                        help='depth file; fields {src}, {img_dir}, {rel_dir}, {stem}')
    parser.add_argument('--depth-format', choices=['gray', 'rgb24'], default='gray')
    parser.add_argument('--depth-scale', type=float, default=1.0,
                        help='multiplier from the stored value to metres (metres) or pixels '
                        '(disparity)')
    parser.add_argument('--depth-encoding', choices=['metres', 'disparity'], default='metres')
    parser.add_argument('--baseline', type=float, default=None,
                        help='stereo baseline in metres (--depth-encoding disparity)')
    parser.add_argument('--focal-length', type=float, default=None,
                        help='focal length in pixels of the stored map (--depth-encoding '
                        'disparity)')
    parser.add_argument('--hfov', type=float, default=None,
                        help='horizontal field of view in degrees, instead of --focal-length '
                        '(focal = width / (2 tan(hfov / 2)))')
    parser.add_argument('--depth-range', type=float, nargs=2, default=[1.0, 1000.0],
                        metavar=('MIN', 'MAX'),
                        help='plausible median depth of one map in metres; outside it the '
                        'conversion stops')
    parser.add_argument('--inspect-depth', type=int, default=0, metavar='N',
                        help='print the stored range of the first N depth maps and the depth '
                        'the options give, then stop without writing anything')
    parser.add_argument('--depth-interp', choices=sorted(INTERP), default='nearest')
    parser.add_argument('--size', type=int, default=512, help='output side (0 = keep)')
    parser.add_argument('--stuff-classes', nargs='+', default=list(VALID_DEFAULT_STUFF))
    parser.add_argument('--split-file', nargs='+', default=None, metavar='FILE',
                        help='FILE.json {"train": [...], ...}, FILE.csv with a "split" column, '
                        'or train=FILE val=FILE test=FILE (CSV scene,altitude,image / JSON '
                        'list / text)')
    parser.add_argument('--split-sizes', type=int, nargs=3, default=[3345, 1115, 2230],
                        metavar=('TRAIN', 'VAL', 'TEST'),
                        help='proportions of the seeded split (the paper\'s sizes)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.stuff_classes) - set(VALID_RAW_CLASSES))
    if unknown:
        parser.error(f'--stuff-classes {unknown} are not VALID categories: {VALID_RAW_CLASSES}')
    if args.inspect_depth < 0:
        parser.error(f'--inspect-depth must be >= 0, got {args.inspect_depth}')
    if args.size < 0 or min(args.split_sizes) < 0 or sum(args.split_sizes) == 0:
        parser.error('--size and --split-sizes must be non-negative (split sizes not all 0)')
    if not args.depth_scale > 0:
        parser.error(f'--depth-scale must be positive, got {args.depth_scale}')
    low, high = args.depth_range
    if not 0 <= low < high:
        parser.error(f'--depth-range needs 0 <= MIN < MAX, got {low:g} {high:g}')
    stereo = dict(baseline=args.baseline, focal_length=args.focal_length, hfov=args.hfov)
    if args.depth_encoding == 'disparity':
        if not (args.baseline or 0) > 0:
            parser.error('--depth-encoding disparity needs --baseline (metres, > 0)')
        if (args.focal_length is None) == (args.hfov is None):
            parser.error('--depth-encoding disparity needs exactly one of --focal-length '
                         '(pixels) and --hfov (degrees)')
        if args.focal_length is not None and not args.focal_length > 0:
            parser.error(f'--focal-length must be positive, got {args.focal_length}')
        if args.hfov is not None and not 0 < args.hfov < 180:
            parser.error(f'--hfov must be in (0, 180) degrees, got {args.hfov}')
    elif any(v is not None for v in stereo.values()):
        given = [f'--{k.replace("_", "-")}' for k, v in stereo.items() if v is not None]
        parser.error(f'{" ".join(given)}: only for --depth-encoding disparity')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert; returns ``{split: number of images}`` (``{'inspected': N}`` with
    ``--inspect-depth``)."""
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
    if args.inspect_depth:
        return inspect_depth(args, [by_rel[rel] for rel in sorted(by_rel)][:args.inspect_depth],
                             image_root)
    splits = assign_splits(list(by_rel), args)
    ann_index = None
    if args.ann_dir:
        ann_dir = osp.join(args.src, args.ann_dir)
        ann_index = index_ann_dir(ann_dir, args.image_root, args.workers)
        wanted = [rel for rels in splits.values() for rel in rels]
        missing = [rel for rel in wanted if rel not in ann_index]
        if missing:
            raise ConversionError(
                f'{len(missing)} image(s) have no JSON in {ann_dir} whose file_name names them, '
                f'e.g. {[osp.join(args.image_root, m) for m in missing[:3]]}')
        orphans = len(set(ann_index) - set(by_rel))
        if orphans:
            print(f'VALID: {orphans} JSON(s) in {ann_dir} name images not found under '
                  f'{image_root} and are ignored')
    counts = {}
    for split, rel_paths in splits.items():
        jobs = []
        for rel in rel_paths:
            path = by_rel[rel]
            stem = osp.splitext(osp.basename(path))[0]
            fields = dict(src=args.src, img_dir=osp.dirname(path), rel_dir=osp.dirname(rel),
                          stem=stem)
            jobs.append(
                dict(image=path, depth=args.depth_template.format(**fields),
                     ann=ann_index[rel] if ann_index is not None else
                     args.ann_template.format(**fields),
                     stem=out_stems[rel],
                     out=args.out, split=split, cat_ids=cat_ids, thing_ids=thing_ids,
                     depth_format=args.depth_format, depth_scale=args.depth_scale,
                     depth_encoding=args.depth_encoding, baseline=args.baseline,
                     focal_length=args.focal_length, hfov=args.hfov,
                     depth_range=tuple(args.depth_range), depth_interp=args.depth_interp,
                     size=args.size, skip_existing=args.skip_existing,
                     with_stats=split == 'train'))
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
