"""COCO-panoptic dataset whose samples carry one file per co-registered modality."""
import json
import os.path as osp
from collections import Counter
from multiprocessing import Pool
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmdet.datasets import CocoPanopticDataset
from mmdet.registry import DATASETS
from mmengine.fileio import get
from panopticapi.utils import rgb2id

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
    data_info, loader, ann_file, backend_args = args
    problems: List[Problem] = []
    image = data_info.get('raw_file_name') or osp.basename(data_info.get('img_path', '?'))
    if loader is not None:
        try:
            loader(dict(modality_paths=dict(data_info['modality_paths'])))
        except Exception as err:  # noqa: BLE001  (every failure becomes one table row)
            files = getattr(err, 'files', ()) or (data_info.get('img_path', image), )
            problems.append((', '.join(files), f'{type(err).__name__}: {err}'))
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


@DATASETS.register_module()
class MultiModalCocoPanopticDataset(CocoPanopticDataset):
    """:class:`CocoPanopticDataset` with a folder per modality (layout in DESIGN.md).

    Every modality file shares the stem of the image ``file_name`` in the panoptic JSON:
    ``<data_root>/<modalities[name]>/<stem><modality_suffixes[name]>``. Each data info gets
    ``modality_paths`` (ordered like ``modalities``) for :class:`LoadMultiModalImages`;
    ``img_path`` stays the first modality's (optical) file so stock hooks and visualisers work.
    The panoptic PNG is ``<stem>.png`` whatever the image extension (mmdet only maps ``.jpg``).

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
    """

    def __init__(self,
                 *args,
                 modalities: Dict[str, str],
                 modality_suffixes: Optional[Dict[str, str]] = None,
                 check_annotations: bool = True,
                 check_on_startup: bool = False,
                 check_workers: int = 0,
                 **kwargs) -> None:
        if not isinstance(modalities, dict) or not modalities:
            raise ValueError('MultiModalCocoPanopticDataset: `modalities` must be a non-empty dict '
                             f'name -> folder prefix, got {modalities!r}')
        modality_suffixes = dict(modality_suffixes or {})
        unknown = set(modality_suffixes) - set(modalities)
        if unknown:
            raise ValueError(f'MultiModalCocoPanopticDataset: `modality_suffixes` names {sorted(unknown)} '
                             f'which are not in `modalities` {list(modalities)}')
        self.modalities = dict(modalities)
        self.modality_suffixes = modality_suffixes
        self.check_annotations = check_annotations
        self.check_on_startup = check_on_startup
        self.check_workers = int(check_workers)
        self._verified: set = set()
        super().__init__(*args, **kwargs)

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

    def check_all(self, workers: int = 0, progress: bool = False) -> List[Problem]:
        """Run every per-file check on every sample; returns (file, problem) rows."""
        loader = self._loader()
        jobs = [(self.get_data_info(i), loader, self.ann_file, self.backend_args)
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
