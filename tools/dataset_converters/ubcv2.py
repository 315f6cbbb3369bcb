"""Convert UBCV2 (multi-modal fine-grained roofs) / DFC2023 track 1 to the multimodal
COCO-panoptic layout (optical + SAR, 512x512, paper sec. IV-A-3).

Assumptions about the raw release:

* ``<src>/<split>/rgb/<name>`` (3-band uint8 TIFF) and ``<src>/<split>/sar/<name>`` (single-band
  TIFF, any dtype; of a multi-band file ``--sar-band`` is taken) share file names; the folders
  are options (``--rgb-dir``/``--sar-dir``, ``{split}`` is substituted).
* One COCO instance JSON per split: ``annotations/roof_fine_<split>.json`` (UBCV2) or
  ``roof_fine_<split>.json`` (DFC2023), or ``--ann-template``. Categories are matched by name
  (case, spaces and hyphens ignored), else by supercategory (DFC2023's ``image_id_test.json``
  spells ``revolved`` as ``reolved`` in ``name``), to the 12 roof classes of
  :data:`pmtseg_mm.datasets.ubcv2.UBCV2_THING_CLASSES`; anything else is an error.
  Segmentations may be polygons or RLE. Images listed in the JSON are converted (all of them,
  with or without roofs); files not listed are ignored.
* A split whose JSON has no annotation at all (DFC2023 released val and test as image lists,
  ``image_id/image_id_<split>.json``) is an error: it would become all-background ground truth.
  ``--allow-unlabelled`` converts such a split to images only plus
  ``annotations/images_<split>.json`` (a COCO image list for inference), no panoptic files.

Panoptic = the roofs (things) over one ``background`` stuff segment covering all other pixels.
Overlapping roofs: roofs are painted largest first, so a smaller roof lies on top of a larger
one, and among equal areas the later annotation lies on top. Crowd annotations stay crowd
segments. The instances JSON holds the visible (painted) part of every roof, so semantic,
instance and panoptic targets come from the same annotation.
"""
import argparse
import json
import os.path as osp
import shutil
from typing import Dict, List, Optional, Tuple

import numpy as np

from _common import (ConversionError, Segment, add_common_args, band_partial,
                     categories_from_metainfo, cli, decode_segmentation, maybe_write, normalise,
                     panoptic_record, parallel_map, rasterize, read_image, split_guard,
                     write_image_list_json, write_modality_stats, write_split_json)
from pmtseg_mm.datasets.ubcv2 import UBCV2Dataset

DEFAULT_ANN_TEMPLATES = ('annotations/roof_fine_{split}.json', 'roof_fine_{split}.json')
# DFC2023 track 1 image lists of the splits released without labels
DFC2023_IMAGE_LIST = 'image_id/image_id_{split}.json'


def find_ann_file(src: str, split: str, template: Optional[str]) -> str:
    tried = [osp.join(src, t.format(split=split))
             for t in ((template, ) if template else DEFAULT_ANN_TEMPLATES)]
    for path in tried:
        if osp.isfile(path):
            return path
    hint = ''
    image_list = osp.join(src, DFC2023_IMAGE_LIST.format(split=split))
    if not template and osp.isfile(image_list):
        hint = (f'; {image_list} exists, but DFC2023 released {split} without labels: convert it '
                f"for inference with --ann-template '{DFC2023_IMAGE_LIST}' --allow-unlabelled")
    raise ConversionError(f'split {split}: missing annotation file, tried {tried}{hint}')


def load_split(src: str, split: str, args: argparse.Namespace,
               name_to_id: Dict[str, int]) -> Tuple[list, bool]:
    """One job per image of the split's COCO file, and whether the split carries labels."""
    ann_path = find_ann_file(src, split, args.ann_template)
    try:
        with open(ann_path) as f:
            coco = json.load(f)
    except (OSError, ValueError) as err:
        raise ConversionError(f'cannot read annotation file {ann_path}: {err}') from None
    cat_map = {}
    for cat in coco.get('categories', []):
        name = normalise(cat['name'])
        if name not in name_to_id:
            name = normalise(str(cat.get('supercategory', '')))
        if name not in name_to_id:
            raise ConversionError(f'{ann_path}: category {cat["name"]!r} (id {cat["id"]}, '
                                  f'supercategory {cat.get("supercategory")!r}) is not one of '
                                  f'the UBCV2 roof classes {sorted(name_to_id)}')
        cat_map[cat['id']] = name_to_id[name]
    anns: Dict[int, list] = {}
    for ann in coco.get('annotations', []):
        if ann['category_id'] not in cat_map:
            raise ConversionError(f'{ann_path}: annotation {ann.get("id")} has category_id '
                                  f'{ann["category_id"]} which is not in its categories')
        anns.setdefault(ann['image_id'], []).append(ann)
    jobs, stems = [], {}
    for img in coco.get('images', []):
        stem = osp.splitext(osp.basename(img['file_name']))[0]
        if stem in stems:
            raise ConversionError(f'{ann_path}: images {stems[stem]!r} and {img["file_name"]!r} '
                                  'share the file stem')
        stems[stem] = img['file_name']
        name = osp.basename(img['file_name'])
        jobs.append(
            dict(stem=stem, ann_path=ann_path, height=img['height'], width=img['width'],
                 rgb=osp.join(src, args.rgb_dir.format(split=split), name),
                 sar=osp.join(src, args.sar_dir.format(split=split), name),
                 anns=[dict(segmentation=a['segmentation'], category_id=cat_map[a['category_id']],
                            iscrowd=int(a.get('iscrowd', 0)), id=a.get('id'))
                       for a in anns.get(img['id'], [])]))
    if not jobs:
        raise ConversionError(f'{ann_path} lists no images')
    labelled = bool(coco.get('annotations'))
    if not labelled and not args.allow_unlabelled:
        raise ConversionError(
            f'{ann_path} lists {len(jobs)} images but no annotations: split {split} carries no '
            'labels (DFC2023 released val and test without labels) and would become '
            'all-background ground truth; use a labelled split, or pass --allow-unlabelled to '
            f'write its images only (annotations/images_{split}.json, for inference)')
    return jobs, labelled


def convert_image(job: dict) -> dict:
    rgb = read_image(job['rgb'])
    sar = read_image(job['sar'])
    h, w = job['height'], job['width']
    if rgb.shape[2] < 3 or rgb.dtype not in (np.uint8, np.uint16):
        raise ConversionError(f'{job["rgb"]}: expected an RGB uint8/uint16 image, got '
                              f'{rgb.shape[2]} band(s) of {rgb.dtype}')
    for path, array in ((job['rgb'], rgb), (job['sar'], sar)):
        if array.shape[:2] != (h, w):
            raise ConversionError(f'{path} is {array.shape[0]}x{array.shape[1]} but '
                                  f'{job["ann_path"]} says {h}x{w} (HxW)')
    if job['sar_band'] >= sar.shape[2]:
        raise ConversionError(f'{job["sar"]} has {sar.shape[2]} band(s); --sar-band '
                              f'{job["sar_band"]} does not exist')
    optical, sar = rgb[..., :3], sar[..., job['sar_band']]
    out, split, stem = job['out'], job['split'], job['stem']
    maybe_write(osp.join(out, 'optical', split, stem + '.png'), lambda: optical, job['skip_existing'])
    maybe_write(osp.join(out, 'sar', split, stem + '.tif'), lambda: sar, job['skip_existing'])
    stats = dict(optical=band_partial(optical), sar=band_partial(sar[..., None])) \
        if job['with_stats'] else None
    if not job['labelled']:
        return dict(record=dict(file_name=stem + '.png', height=h, width=w), stats=stats)
    roofs = [
        Segment(a['category_id'],
                decode_segmentation(a['segmentation'], h, w,
                                    f'{job["ann_path"]} annotation {a["id"]}'), a['iscrowd'])
        for a in job['anns']
    ]
    roofs.sort(key=lambda s: -int(s.mask.sum()))  # stable: larger first, smaller on top
    segments = [Segment(job['background_id'], np.ones((h, w), bool))] + roofs
    pan, meta = rasterize((h, w), segments, job['thing_ids'])
    record = panoptic_record(stem + '.png', pan, meta, job['thing_ids'],
                             osp.join(out, 'annotations', f'panoptic_{split}', stem + '.png'))
    return dict(record=record, stats=stats)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    add_common_args(parser)
    parser.add_argument('--splits', nargs='+', default=['train', 'val'])
    parser.add_argument('--ann-template', default=None,
                        help='COCO file per split relative to --src, e.g. '
                        "'annotations/roof_fine_{split}.json' (default: that, then "
                        "'roof_fine_{split}.json')")
    parser.add_argument('--rgb-dir', default='{split}/rgb')
    parser.add_argument('--sar-dir', default='{split}/sar')
    parser.add_argument('--sar-band', type=int, default=0)
    parser.add_argument('--allow-unlabelled', action='store_true',
                        help='convert a split whose JSON has no annotations to images only plus '
                        'annotations/images_<split>.json (inference), instead of stopping')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    """Convert; returns ``{split: number of images}``."""
    args = parse_args(argv)
    categories = categories_from_metainfo(UBCV2Dataset.METAINFO)
    name_to_id = {normalise(c['name']): c['id'] for c in categories if c['isthing']}
    thing_ids = list(name_to_id.values())
    background_id = next(c['id'] for c in categories if not c['isthing'])
    counts, unlabelled = {}, []
    for split in args.splits:
        jobs, labelled = load_split(args.src, split, args, name_to_id)
        for job in jobs:
            job.update(out=args.out, split=split, thing_ids=thing_ids, sar_band=args.sar_band,
                       background_id=background_id, skip_existing=args.skip_existing,
                       with_stats=split == 'train', labelled=labelled)
        folders = [osp.join(args.out, m, split) for m in ('optical', 'sar')]
        png_dir = osp.join(args.out, 'annotations', f'panoptic_{split}')
        if labelled:
            folders.append(png_dir)
        elif osp.isdir(png_dir):
            shutil.rmtree(png_dir)  # PNGs of an earlier labelled run would contradict the list
        with split_guard(args.out, split, folders, args.skip_existing):
            results = parallel_map(convert_image, jobs, args.workers, f'UBCV2 {split}')
            records = [r['record'] for r in results]
            if labelled:
                write_split_json(args.out, split, categories, records)
            else:
                write_image_list_json(args.out, split, categories,
                                      [(r['file_name'], r['height'], r['width']) for r in records])
                unlabelled.append(split)
        counts[split] = len(results)
        if split == 'train':
            write_modality_stats(args.out, {
                m: [r['stats'][m] for r in results] for m in ('optical', 'sar')
            })
    print(f'UBCV2 -> {args.out}: ' + ', '.join(
        f'{s} {n} images' + (' (unlabelled: images only)' if s in unlabelled else '')
        for s, n in counts.items()))
    return counts


if __name__ == '__main__':
    cli(main)
