"""COCO-panoptic dataset whose samples carry one file per co-registered modality."""
import json
import os.path as osp
from collections import Counter
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmdet.datasets import CocoPanopticDataset
from mmdet.datasets.api_wrappers import COCOPanoptic
from mmdet.registry import DATASETS
from mmdet.visualization.palette import get_palette
from mmengine.fileio import get, get_local_path
from panopticapi.utils import rgb2id

from ..structures import check_modality_folders
from .transforms.loading import InvalidDataError, LoadMultiModalImages

Problem = Tuple[str, str]  # (file, what is wrong)


def check_panoptic_png(seg_map_path: str, declared: Dict[int, float], image: str,
                       ann_file: str, backend_args: Optional[dict] = None) -> List[str]:
    """Compare a panoptic PNG's segment ids with its ``segments_info`` (id -> declared area).

    Returns problem descriptions (empty when consistent): ids in the PNG that the JSON does not
    declare (their pixels would silently become void) and declared segments with a positive area
    and no pixel (each would become an empty instance, a guaranteed PQ miss).
    """
    try:
        png = mmcv.imfrombytes(get(seg_map_path, backend_args=backend_args), flag='color',
                               channel_order='rgb')
    except FileNotFoundError:
        return [f'panoptic PNG of image {image!r} not found']
    except Exception as err:  # noqa: BLE001
        return [f'cannot read the panoptic PNG of image {image!r}: {err}']
    if png is None:
        return [f'cannot read the panoptic PNG of image {image!r}']
    ids, counts = np.unique(rgb2id(png), return_counts=True)
    pixels = {int(i): int(c) for i, c in zip(ids, counts) if i != 0}
    problems = []
    undeclared = sorted(set(pixels) - set(declared))
    if undeclared:
        problems.append(f'PNG segment id(s) {undeclared} of image {image!r} are missing from '
                        f'`segments_info` in {ann_file} (their pixels would become void)')
    empty = sorted(i for i, area in declared.items() if area > 0 and i not in pixels)
    if empty:
        problems.append(f'`segments_info` id(s) {empty} of image {image!r} in {ann_file} have no '
                        'pixels in the PNG (they would become empty instances)')
    zero = sorted(i for i, area in declared.items() if area <= 0 and i in pixels)
    if zero:
        problems.append(f'`segments_info` id(s) {zero} of image {image!r} in {ann_file} declare '
                        'area 0 but have pixels in the PNG (they would be dropped as void)')
    return problems


def _check_one(args) -> List[Problem]:
    """All per-file checks of one sample (module level so worker processes can run it)."""
    data_info, loader, ann_file, backend_args, min_valid = args
    problems: List[Problem] = []
    image = data_info.get('raw_file_name') or osp.basename(data_info.get('img_path', '?'))
    if loader is not None:
        try:
            loaded = loader(dict(modality_paths=dict(data_info['modality_paths'])))
        except Exception as err:  # noqa: BLE001  (every failure becomes one table row)
            files = getattr(err, 'files', ()) or (data_info.get('img_path', image), )
            problems.append((', '.join(files), f'{type(err).__name__}: {err}'))
        else:
            nodata = loaded.get('nodata_mask')
            valid = 1.0 - float(nodata.mean()) if nodata is not None else 1.0
            if valid < min_valid:
                problems.append((', '.join(data_info['modality_paths'].values()),
                                 f'only {valid:.1%} of the pixels are valid (not `nodata` in '
                                 f'any modality), below the threshold {min_valid:.0%}'))
    if data_info.get('seg_map_path'):
        for text in check_panoptic_png(data_info['seg_map_path'],
                                       data_info.get('declared_segments', {}), image, ann_file,
                                       backend_args):
            problems.append((data_info['seg_map_path'], text))
    return problems


def check_instances_json(panoptic_json: str, instances_json: str) -> List[Problem]:
    """Compare the things of a panoptic JSON with an instances JSON, image by image.

    The multisets of (category_id, iscrowd, area) of each image must agree.
    """
    with open(panoptic_json) as f:
        pan = json.load(f)
    with open(instances_json) as f:
        ins = json.load(f)
    things = {c['id'] for c in pan.get('categories', []) if c.get('isthing')}
    names = {img['id']: img.get('file_name', str(img['id'])) for img in pan.get('images', [])}
    expected: Dict[int, Counter] = {i: Counter() for i in names}
    for ann in pan.get('annotations', []):
        for seg in ann.get('segments_info', []):
            if seg.get('category_id') in things and seg.get('area', 0) > 0:
                expected.setdefault(ann['image_id'], Counter())[
                    (seg['category_id'], int(bool(seg.get('iscrowd', 0))), int(seg['area']))] += 1
    found: Dict[int, Counter] = {i: Counter() for i in names}
    for ann in ins.get('annotations', []):
        found.setdefault(ann['image_id'], Counter())[
            (ann['category_id'], int(bool(ann.get('iscrowd', 0))), int(round(ann['area'])))] += 1
    problems = []
    for image_id in sorted(set(expected) | set(found), key=str):
        if expected.get(image_id, Counter()) != found.get(image_id, Counter()):
            only_pan = sorted((expected.get(image_id, Counter()) - found.get(image_id,
                                                                               Counter())).elements())
            only_ins = sorted((found.get(image_id, Counter()) - expected.get(image_id,
                                                                              Counter())).elements())
            problems.append((instances_json, f'image {names.get(image_id, image_id)!r} (id '
                             f'{image_id}): things (category_id, iscrowd, area) only in the '
                             f'panoptic JSON {only_pan}, only in the instances JSON {only_ins}'))
    return problems


def format_problems(problems: Sequence[Problem]) -> str:
    """A two-column text table: file | problem."""
    width = min(max([len('file')] + [len(f) for f, _ in problems]), 80)
    lines = [f'{"file":<{width}}  problem', f'{"-" * width}  {"-" * 7}']
    lines += [f'{f:<{width}}  {p}' for f, p in problems]
    return '\n'.join(lines)


class NameOrderedCOCOPanoptic(COCOPanoptic):
    """:class:`COCOPanoptic` whose ``get_cat_ids(cat_names=...)`` follows the order of the names.

    mmdet returns the ids in the JSON's category order, so a label would index the JSON order
    instead of the dataset ``classes`` (things first, as the heads and metrics expect).
    """

    def get_cat_ids(self, cat_names=[], sup_names=[], cat_ids=[]) -> List[int]:
        ids = super().get_cat_ids(cat_names, sup_names, cat_ids)
        if cat_names:
            rank = {name: i for i, name in enumerate(cat_names)}
            ids = sorted(ids, key=lambda i: rank[self.cats[i]['name']])
        return ids


def classes_from_categories(categories: Sequence[dict], ann_file: str) -> dict:
    """Dataset metainfo from COCO-panoptic ``categories``: things first, each group in JSON order.

    ``palette`` is the categories' ``color`` where every category has one, else a fixed random
    one. Raises ``ValueError`` naming ``ann_file`` for missing ``isthing`` or repeated names.
    """
    names = [c.get('name') for c in categories]
    repeated = sorted({n for n in names if names.count(n) > 1}, key=str)
    no_kind = [c.get('name', c.get('id')) for c in categories if 'isthing' not in c]
    if not categories or repeated or no_kind:
        raise ValueError(
            f'MultiModalCocoPanopticDataset: cannot read the classes from the `categories` of '
            f'{ann_file}: ' + ('it has none' if not categories else
                               f'repeated names {repeated}' if repeated else
                               f'categories {no_kind} have no `isthing`')
            + '; pass metainfo=dict(classes=..., thing_classes=..., stuff_classes=...) '
            '(things first)')
    things = [c for c in categories if c['isthing']]
    stuff = [c for c in categories if not c['isthing']]
    ordered = things + stuff
    if all('color' in c for c in ordered):
        palette = [tuple(int(v) for v in c['color']) for c in ordered]
    else:
        palette = [tuple(int(v) for v in c) for c in get_palette('random', len(ordered))]
    return dict(classes=tuple(c['name'] for c in ordered),
                thing_classes=tuple(c['name'] for c in things),
                stuff_classes=tuple(c['name'] for c in stuff), palette=palette)


@DATASETS.register_module()
class MultiModalCocoPanopticDataset(CocoPanopticDataset):
    """:class:`CocoPanopticDataset` with a folder per modality (layout: docs/dataset_prepare.md).

    Every modality file shares the stem of the image ``file_name`` in the panoptic JSON:
    ``<data_root>/<modalities[name]>/<stem><modality_suffixes[name]>``. Each data info gets
    ``modality_paths`` (ordered like ``modalities``) for :class:`LoadMultiModalImages`;
    ``img_path`` stays the first modality's (optical) file so stock hooks and visualisers work.
    The panoptic PNG is ``<stem>.png`` whatever the image extension (mmdet only maps ``.jpg``).

    Classes: without ``metainfo`` (and without a subclass ``METAINFO``) they are read from the
    annotation JSON's ``categories``: things (``isthing=1``) first, then stuff, each in JSON
    order, with the JSON ``color`` as palette. Given classes are checked against the JSON: each
    must be a category of the same kind (thing/stuff) and ``classes`` must be ``thing_classes +
    stuff_classes``; a given ``classes`` without ``thing_classes``/``stuff_classes`` takes the
    split from ``isthing``. Labels index ``classes`` by name, whatever the JSON order.

    Annotations are checked: an unknown ``category_id`` fails at init naming the image and the
    id; each sample's PNG segment ids must equal its ``segments_info`` ids (checked when the
    sample is first loaded, or for the whole dataset at start-up with ``check_on_startup``).

    Args:
        modalities (dict[str, str]): Modality name -> folder prefix relative to ``data_root``,
            e.g. ``dict(optical='optical/train/', depth='depth/train/')``. Order matters: it is
            the channel order of the stacked image.
        modality_suffixes (dict[str, str], optional): Modality name -> file suffix (``'.tif'``).
            A modality without one uses the extension of the JSON ``file_name``.
        check_annotations (bool): Check each sample's PNG against its ``segments_info`` when it
            is loaded. Defaults to True.
        check_on_startup (bool): Run every per-file check (the pipeline's
            :class:`LoadMultiModalImages` checks and the annotation checks) over the whole
            dataset at init and raise one error listing all problems. Defaults to False (use
            ``tools/misc/check_dataset.py`` once instead).
        check_workers (int): Worker processes for ``check_on_startup``. Defaults to 0.
        metainfo (dict, optional): ``classes``, ``thing_classes``, ``stuff_classes`` (things
            first), ``palette``. Defaults to the subclass ``METAINFO``, else to the JSON's
            ``categories``.
    """

    COCOAPI = NameOrderedCOCOPanoptic

    def __init__(self,
                 *args,
                 modalities: Dict[str, str],
                 modality_suffixes: Optional[Dict[str, str]] = None,
                 check_annotations: bool = True,
                 check_on_startup: bool = False,
                 check_workers: int = 0,
                 **kwargs) -> None:
        self.modalities, self.modality_suffixes = check_modality_folders(
            modalities, modality_suffixes, 'MultiModalCocoPanopticDataset')
        self.check_annotations = check_annotations
        self.check_on_startup = check_on_startup
        self.check_workers = int(check_workers)
        self._verified: set = set()
        # metainfo keys given by the user or a subclass METAINFO (not inherited from COCO)
        given = dict(kwargs.get('metainfo') or {})
        if type(self).METAINFO is not CocoPanopticDataset.METAINFO:
            given = {**type(self).METAINFO, **given}
        self._given_classes = {k: tuple(given[k]) for k in
                               ('classes', 'thing_classes', 'stuff_classes') if k in given}
        super().__init__(*args, **kwargs)

    def _resolve_classes(self) -> None:
        """Set (no given ``classes``) or check (given) the classes against the JSON categories."""
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            with open(local_path) as f:
                categories = json.load(f).get('categories', [])
        if 'classes' not in self._given_classes:
            self._metainfo.update(classes_from_categories(categories, self.ann_file))
            return
        kinds = {c.get('name'): bool(c.get('isthing')) for c in categories}
        classes = self._given_classes['classes']
        things = self._given_classes.get('thing_classes',
                                         tuple(n for n in classes if kinds.get(n)))
        stuff = self._given_classes.get('stuff_classes',
                                        tuple(n for n in classes if not kinds.get(n, True)))
        problems = []
        missing = [n for n in classes if n not in kinds]
        if missing:
            problems.append(f'classes {missing} are not categories of the JSON (it has '
                            f'{sorted(kinds, key=str)})')
        wrong = ([n for n in things if n in kinds and not kinds[n]]
                 + [n for n in stuff if kinds.get(n)])
        if wrong:
            problems.append(f'classes {wrong} are things in one and stuff in the other')
        if tuple(things) + tuple(stuff) != tuple(classes):
            problems.append(f'`classes` {list(classes)} must be `thing_classes` {list(things)} '
                            f'+ `stuff_classes` {list(stuff)} (things first)')
        if problems:
            raise ValueError(
                f'MultiModalCocoPanopticDataset: the given metainfo conflicts with the '
                f'`categories` of {self.ann_file}: ' + '; '.join(problems) + '. Pass '
                'metainfo=dict(classes=..., thing_classes=..., stuff_classes=...) that matches '
                'the JSON, or no metainfo to read the classes from it.')
        self._metainfo.update(classes=tuple(classes), thing_classes=tuple(things),
                              stuff_classes=tuple(stuff))

    def load_data_list(self) -> List[dict]:
        """Resolve the classes against the JSON categories, then load as mmdet does."""
        self._resolve_classes()
        return super().load_data_list()

    def full_init(self) -> None:
        """Load annotations and, with ``check_on_startup``, check every sample."""
        if self._fully_initialized:
            return
        super().full_init()
        if self.check_on_startup:
            problems = self.check_all(workers=self.check_workers)
            if problems:
                raise InvalidDataError(
                    f'MultiModalCocoPanopticDataset ({self.ann_file}): {len(problems)} problem(s) '
                    'found by `check_on_startup`:\n' + format_problems(problems),
                    [f for f, _ in problems])
            self._verified = set(range(len(self)))

    def _join_prefix(self) -> None:
        """Also resolve the modality prefixes against ``data_root``."""
        super()._join_prefix()
        if self.data_root is not None:
            self.modalities = {
                name: osp.join(self.data_root, prefix)
                for name, prefix in self.modalities.items()
            }

    def parse_data_info(self, raw_data_info: dict) -> dict:
        img_info = raw_data_info['raw_img_info']
        # segment ids are per image: COCOPanoptic returns every image's segments with these ids
        anns = [a for a in raw_data_info['raw_ann_info'] if a['image_id'] == img_info['img_id']]
        for ann in anns:
            category_id = ann.get('category_id')
            if category_id not in self.cat2label:
                known = {c['id']: c['name'] for c in self.coco.load_cats(self.cat_ids)}
                in_json = category_id in self.coco.cats
                raise InvalidDataError(
                    f"{self.ann_file}: image {img_info['file_name']!r} (id {img_info['img_id']}) "
                    f"has segment id {ann.get('id')} with category_id {category_id}, which "
                    + ('is not one of the dataset classes (metainfo `classes`)' if in_json else
                       'is not in the JSON `categories`')
                    + f'; known categories: {known}', [self.ann_file])
        data_info = super().parse_data_info(raw_data_info)
        stem, ext = osp.splitext(img_info['file_name'])
        if data_info['seg_map_path'] is not None:  # mmdet only maps '.jpg' to the PNG name
            data_info['seg_map_path'] = osp.join(self.data_prefix['seg'], stem + '.png')
        data_info['modality_paths'] = {
            name: osp.join(prefix, stem + self.modality_suffixes.get(name, ext))
            for name, prefix in self.modalities.items()
        }
        data_info['raw_file_name'] = img_info['file_name']
        data_info['declared_segments'] = {
            int(ann['id']): float(ann.get('area', 0)) for ann in anns
        }
        return data_info

    def _loader(self) -> Optional[LoadMultiModalImages]:
        """The pipeline's loading transform (its checks apply to every file)."""
        for transform in getattr(self.pipeline, 'transforms', []):
            if isinstance(transform, LoadMultiModalImages):
                return transform
        return None

    def check_all(self, workers: int = 0, progress: bool = False,
                  min_valid: float = 0.5) -> List[Problem]:
        """Run every per-file check on every sample; returns (file, problem) rows. A sample
        whose fraction of valid pixels (no modality ``nodata``) is below ``min_valid`` is a
        problem too."""
        loader = self._loader()
        jobs = [(self.get_data_info(i), loader, self.ann_file, self.backend_args, min_valid)
                for i in range(len(self))]
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc=f'checking {osp.basename(self.ann_file)}')
        problems: List[Problem] = []
        if workers > 0:
            with Pool(workers) as pool:
                for rows in pool.imap(_check_one, jobs, chunksize=4):
                    problems += rows
                    bar is not None and bar.update()
        else:
            for job in jobs:
                problems += _check_one(job)
                bar is not None and bar.update()
        if bar is not None:
            bar.close()
        return problems

    def prepare_data(self, idx: int):
        if self.check_annotations and idx not in self._verified:
            info = self.get_data_info(idx)
            if info.get('seg_map_path'):
                problems = check_panoptic_png(info['seg_map_path'],
                                              info.get('declared_segments', {}),
                                              info['raw_file_name'], self.ann_file,
                                              self.backend_args)
                if problems:
                    raise InvalidDataError(f"{info['seg_map_path']}: " + '; '.join(problems),
                                           [info['seg_map_path']])
            self._verified.add(idx)
        return super().prepare_data(idx)
