"""Convert SemCity Toulouse to the multimodal COCO-panoptic layout (optical + NIR patches).

Paper (sec. IV-A-2): the four tiles with building instances (03, 04, 07, 08) are cut into
128x128 patches, optical + NIR; train = tiles 04, 08, test = tiles 03, 07 (written as ``val``);
panoptic = semantic labels + building instances. Assumptions about the raw release:

* ``--source bands`` (default): ``img_multispec_05/TLS_BDSD_M/TLS_BDSD_M_XX.tif``, 8 WorldView-2
  bands (uint16), taken to be in the sensor's order coastal, blue, green, yellow, red, red-edge,
  NIR1, NIR2 (public loaders name them so; others read bands 4/3/2 as RGB). ``--bands R G B NIR``
  (0-indexed, default 4 2 1 6: true RGB and NIR1). When the official RGB/NIRRG composites of a
  tile are present, the bands that best match their channels (rank correlation) are reported
  and a disagreement with ``--bands`` is warned about.
* ``--source composites``: the official 8-bit composites
  ``img_multispec_05/TLS_BDSD_RGB[_noGeo]/TLS_BDSD_RGB[_noGeo]_XX.tif`` (R, G, B) for optical
  and channel 0 of ``TLS_BDSD_NIRRG[_noGeo]_XX.tif`` (NIR, R, G) for NIR, as the public panoptic
  loaders of these tiles feed them; no stretch. A NIRRG whose channels 1, 2 do not best match
  R, G of the RGB composite is warned about.
* Semantic labels: ``semantic_05/TLS_indMap[_noGeo]/TLS_indMap[_noGeo]_XX[_<annotator>].tif``
  (index 0-7) or ``semantic_05/TLS_GT/TLS_GT_XX[_<annotator>].tif`` (RGB colours; released
  without the suffix); classes and colours in
  :data:`pmtseg_mm.datasets.semcity_toulouse.SEMCITY_RAW_CLASSES`, 0 / white = void.
  Tiles 03/04/07/08 carry several annotations; by default (``--annotator auto``) the
  highest-numbered one found is used (a file without suffix counts as the lowest), as public
  panoptic loaders of these tiles pair the instance maps with the later (non-``_1``)
  annotation.
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

Images (``--source bands``): a per-tile, per-band 2-98 % percentile stretch to 8 bit (PNG), or
the raw uint16 values as TIFF with ``--keep-16bit``. Patches follow a non-overlapping grid from the top-left corner;
the remainder at the right/bottom edges is dropped (floor(H/128) x floor(W/128) per tile).
"""
import argparse
import glob
import os.path as osp
import re
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from _common import (ConversionError, Segment, add_common_args, band_partial,
                     categories_from_metainfo, cli, maybe_write, panoptic_record, parallel_map,
                     rasterize, read_image, split_guard, write_modality_stats, write_split_json)
from pmtseg_mm.datasets.semcity_toulouse import SEMCITY_RAW_CLASSES, semcity_metainfo

# 0-indexed red, green, blue, NIR1 of the 8 WorldView-2 bands (coastal, blue, green, yellow,
# red, red-edge, NIR1, NIR2)
DEFAULT_BANDS = (4, 2, 1, 6)
WV2_BAND_NAMES = ('coastal', 'blue', 'green', 'yellow', 'red', 'red-edge', 'NIR1', 'NIR2')
STRETCH_PERCENTILES = (2.0, 98.0)
BUILDING, CAR = 2, 5  # raw label indices
LABEL_DIRS = dict(index=('TLS_indMap', 'TLS_indMap_noGeo'), colour=('TLS_GT', ))
COMPOSITES = dict(rgb='TLS_BDSD_RGB', nirrg='TLS_BDSD_NIRRG')
BAND_CHECK_SAMPLES = 200_000  # pixels per tile for the rank correlation


def _composite(src: str, tile: str, kind: str) -> Tuple[Optional[str], List[str]]:
    """The official composite of a tile (georeferenced or ``_noGeo``) and the paths tried."""
    tried = [osp.join(src, 'img_multispec_05', name, f'{name}_{tile}.tif')
             for name in (COMPOSITES[kind], COMPOSITES[kind] + '_noGeo')]
    return next((p for p in tried if osp.isfile(p)), None), tried


def _label_file(src: str, tile: str, label_format: str, annotator: str) -> str:
    """Label map of a tile, matched with or without the ``_<annotator>`` suffix."""
    found: Dict[int, str] = {}  # annotator number -> path; -1 = no suffix
    patterns = []
    for folder in LABEL_DIRS[label_format]:
        label_dir = osp.join(src, 'semantic_05', folder)
        patterns.append(f'{label_dir}/{folder}_{tile}[_<annotator>].tif')
        for path in sorted(glob.glob(osp.join(label_dir, f'{folder}_{tile}*.tif'))):
            match = re.fullmatch(rf'{folder}_{tile}(?:_(\d+))?\.tif', osp.basename(path))
            if match:
                found.setdefault(int(match.group(1) or -1), path)  # first folder wins
    if not found:
        raise ConversionError(f'tile {tile}: no {label_format} label map found, looked for '
                              f'{patterns}')
    if annotator in ('auto', 'first'):
        return found[max(found) if annotator == 'auto' else min(found)]
    key = -1 if annotator == 'none' else int(annotator)
    if key in found:
        return found[key]
    have = ['none' if k < 0 else str(k) for k in sorted(found)]
    raise ConversionError(f'tile {tile}: no {label_format} label map for --annotator '
                          f'{annotator}; found annotator(s) {have}: '
                          f'{[found[k] for k in sorted(found)]}')


def _tile_files(src: str, tile: str, label_format: str, annotator: str,
                source: str) -> Dict[str, str]:
    files = {}
    if source == 'bands':
        files['image'] = osp.join(src, 'img_multispec_05', 'TLS_BDSD_M', f'TLS_BDSD_M_{tile}.tif')
    else:
        for kind in COMPOSITES:
            path, tried = _composite(src, tile, kind)
            if path is None:
                raise ConversionError(f'tile {tile}: missing {kind.upper()} composite for '
                                      f'--source composites, tried {tried}')
            files[kind] = path
    files['label'] = _label_file(src, tile, label_format, annotator)
    files['instances'] = osp.join(src, 'instances_building_05', 'TLS_instances_building_indMap',
                                  f'TLS_instances_building_indMap_{tile}.tif')
    for path in files.values():
        if not osp.isfile(path):
            raise ConversionError(f'tile {tile}: missing input file {path}')
    return files


def _rank_sample(array: np.ndarray) -> np.ndarray:
    """(N, C) ranks of a fixed strided pixel sample of (H, W, C)."""
    flat = array.reshape(-1, array.shape[-1])
    flat = flat[::max(1, flat.shape[0] // BAND_CHECK_SAMPLES)].astype(np.float64)
    return np.argsort(np.argsort(flat, axis=0, kind='stable'), axis=0).astype(np.float64)


def best_matching_bands(bands: np.ndarray, composite: np.ndarray) -> List[Tuple[int, float]]:
    """For each composite channel, the band with the highest Spearman rank correlation, and
    that correlation (a monotonic stretch of a band keeps it near 1); both (H, W, C) of one
    size."""
    rb, rc = _rank_sample(bands), _rank_sample(composite)
    rb = (rb - rb.mean(0)) / np.maximum(rb.std(0), 1e-12)
    rc = (rc - rc.mean(0)) / np.maximum(rc.std(0), 1e-12)
    corr = rc.T @ rb / rb.shape[0]  # (channels, bands)
    return [(int(c.argmax()), float(c.max())) for c in corr]


def check_bands(tile: str, image: np.ndarray, src: str, bands: Sequence[int]) -> List[str]:
    """Compare ``--bands`` with the bands that best match the official composites of the tile
    (when present); returns the report lines, warnings prefixed with ``warning:``."""
    lines = []
    checks = (('rgb', ('R', 'G', 'B'), (0, 1, 2), bands[:3]),
              ('nirrg', ('NIR', ), (0, ), bands[3:]))
    for kind, names, channels, chosen in checks:
        path, _ = _composite(src, tile, kind)
        if path is None:
            continue
        composite = read_image(path)[..., list(channels)]
        if composite.shape[:2] != image.shape[:2]:
            lines.append(f'warning: tile {tile}: {path} is {composite.shape[0]}x'
                         f'{composite.shape[1]} but TLS_BDSD_M is {image.shape[0]}x'
                         f'{image.shape[1]} (HxW); band check against it skipped')
            continue
        for name, want, (band, rho) in zip(names, chosen,
                                           best_matching_bands(image, composite)):
            text = (f'tile {tile}: {osp.basename(path)} {name} matches band {band} '
                    f'({WV2_BAND_NAMES[band] if band < 8 else "?"}, rank correlation {rho:.3f})')
            if band != want:
                lines.append(f'warning: {text}, but --bands takes band {want} for {name}; check '
                             'the band order of TLS_BDSD_M (or use --source composites)')
            else:
                lines.append(text)
    return lines


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


def check_nirrg(tile: str, path: str, nirrg: np.ndarray, rgb: np.ndarray) -> List[str]:
    """NIRRG is taken as (NIR, R, G): its channels 1 and 2 should match R and G of the RGB
    composite best; returns the report line (``warning:`` when they do not)."""
    matches = best_matching_bands(rgb[..., :3], nirrg[..., 1:3])
    found = ', '.join(f'channel {i + 1} ~ RGB {"RGB"[band]} ({rho:.3f})'
                      for i, (band, rho) in enumerate(matches))
    if [band for band, _ in matches] != [0, 1]:
        return [f'warning: tile {tile}: {osp.basename(path)} {found}; expected channels 1, 2 '
                '= R, G (NIR, R, G order): the NIR taken from channel 0 may be wrong']
    return [f'tile {tile}: {osp.basename(path)} {found}: NIR, R, G order']


def convert_tile(job: dict) -> dict:
    """Cut one tile into patches; write images and panoptic PNGs; return records (+ stats)."""
    files, out, split, tile = job['files'], job['out'], job['split'], job['tile']
    report = []
    if 'image' in files:
        image = read_image(files['image'])
        bands = job['bands']
        if image.shape[2] <= max(bands):
            raise ConversionError(f'{files["image"]} has {image.shape[2]} band(s); --bands '
                                  f'{" ".join(map(str, bands))} needs band {max(bands)} '
                                  '(0-indexed; TLS_BDSD_M holds 8 WorldView-2 bands)')
        if job['band_check']:
            report = check_bands(tile, image, job['src'], bands)
        optical, nir = image[..., list(bands[:3])], image[..., [bands[3]]]
        if not job['keep_16bit']:
            optical, nir = _stretch(optical), _stretch(nir)
    else:
        rgb, nirrg = read_image(files['rgb']), read_image(files['nirrg'])
        for path, array in ((files['rgb'], rgb), (files['nirrg'], nirrg)):
            if array.dtype != np.uint8 or array.shape[2] < 3:
                raise ConversionError(f'{path}: expected an 8-bit 3-band composite, got '
                                      f'{array.shape[2]} band(s) of {array.dtype}')
        if nirrg.shape[:2] != rgb.shape[:2]:
            raise ConversionError(f'{files["nirrg"]} is {nirrg.shape[0]}x{nirrg.shape[1]} but '
                                  f'{files["rgb"]} is {rgb.shape[0]}x{rgb.shape[1]} (HxW)')
        optical, nir = rgb[..., :3], nirrg[..., :1]
        if job['band_check']:
            report = check_nirrg(tile, files['nirrg'], nirrg, rgb)
    h, w = optical.shape[:2]
    labels = _read_labels(files['label'], job['label_format'], (h, w))
    inst = _read_instances(files['instances'], (h, w))
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
    return dict(records=records, stats=stats, report=report)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    add_common_args(parser)
    parser.add_argument('--tiles-train', nargs='+', default=['04', '08'])
    parser.add_argument('--tiles-val', nargs='+', default=['03', '07'])
    parser.add_argument('--patch-size', type=int, default=128)
    parser.add_argument('--source', choices=['bands', 'composites'], default='bands',
                        help='bands: the 16-bit TLS_BDSD_M bands chosen by --bands; composites: '
                        'the official 8-bit TLS_BDSD_RGB / TLS_BDSD_NIRRG images')
    parser.add_argument('--bands', type=int, nargs=4, default=None,
                        metavar=('R', 'G', 'B', 'NIR'),
                        help='0-indexed TLS_BDSD_M bands for red, green, blue and NIR (default '
                        '4 2 1 6 = red, green, blue, NIR1 of the WorldView-2 order)')
    parser.add_argument('--no-band-check', action='store_true',
                        help='skip comparing --bands with the official composites')
    parser.add_argument('--annotator', default='auto',
                        help="annotator suffix of the label maps: 'auto' (highest found, no "
                        "suffix = lowest), 'first' (lowest found), 'none' (the file without "
                        "suffix) or a number such as 3")
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
    if args.source == 'composites' and (args.bands is not None or args.keep_16bit):
        parser.error('--bands and --keep-16bit apply to --source bands only (the composites '
                     'are 8-bit RGB and NIR, R, G)')
    args.bands = tuple(args.bands) if args.bands is not None else DEFAULT_BANDS
    if min(args.bands) < 0:
        parser.error(f'--bands are 0-indexed band numbers, got {list(args.bands)}')
    if args.annotator not in ('auto', 'first', 'none') and not args.annotator.isdigit():
        parser.error(f"--annotator must be 'auto', 'first', 'none' or a number, got "
                     f'{args.annotator!r}')
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
            dict(files=_tile_files(args.src, tile, args.label_format, args.annotator,
                                   args.source), out=args.out, src=args.src, bands=args.bands,
                 band_check=not args.no_band_check,
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
        for line in (line for res in results for line in res['report']):
            print(line, file=sys.stderr if line.startswith('warning') else sys.stdout)
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
