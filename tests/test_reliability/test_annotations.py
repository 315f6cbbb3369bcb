"""Panoptic PNG <-> JSON consistency, unknown categories, instances JSON agreement."""
import os
import os.path as osp

import numpy as np
import pytest
import tifffile

from pmtseg_mm.datasets import MultiModalCocoPanopticDataset
from pmtseg_mm.datasets.multimodal_coco_panoptic import check_instances_json
from pmtseg_mm.datasets.transforms import LoadMultiModalImages
from pmtseg_mm.datasets.transforms.loading import InvalidDataError

from reliability_helpers import load_json, save_json


def _dataset(root, split='train', **kwargs):
    ann = load_json(osp.join(root, f'annotations/panoptic_{split}.json'))
    cats = ann['categories']
    metainfo = dict(classes=tuple(c['name'] for c in cats),
                    thing_classes=tuple(c['name'] for c in cats if c['isthing']),
                    stuff_classes=tuple(c['name'] for c in cats if not c['isthing']))
    return MultiModalCocoPanopticDataset(
        data_root=root, ann_file=f'annotations/panoptic_{split}.json', metainfo=metainfo,
        data_prefix=dict(img=f'optical/{split}/', seg=f'annotations/panoptic_{split}/'),
        modalities=dict(optical=f'optical/{split}/', depth=f'depth/{split}/'),
        modality_suffixes=dict(optical='.png', depth='.tif'), pipeline=[], **kwargs)


def _edit(root, fn, split='train'):
    path = osp.join(root, f'annotations/panoptic_{split}.json')
    ann = load_json(path)
    fn(ann)
    save_json(path, ann)
    return ann


def test_consistent_dataset_passes(synthetic_root):
    dataset = _dataset(synthetic_root)
    info = dataset[0]
    assert set(info['declared_segments']) == {s['id'] for s in info['segments_info']}
    assert dataset.check_all() == []
    assert check_instances_json(osp.join(synthetic_root, 'annotations/panoptic_val.json'),
                                osp.join(synthetic_root, 'annotations/instances_val.json')) == []


def test_png_id_missing_from_segments_info(dataset_copy):
    removed = {}

    def drop(ann):
        seg = ann['annotations'][0]['segments_info'].pop(0)
        removed.update(seg, file=ann['annotations'][0]['file_name'])

    _edit(dataset_copy, drop)
    dataset = _dataset(dataset_copy)
    with pytest.raises(InvalidDataError) as err:
        dataset[0]
    text = str(err.value)
    png = osp.join(dataset_copy, 'annotations/panoptic_train', removed['file'])
    assert png in text and f"[{removed['id']}]" in text and 'missing from `segments_info`' in text
    assert repr(removed['file']) in text and err.value.files == (png, )
    assert dataset[1]['img_id'] is not None  # other samples are fine
    assert dataset.check_all()[0][0] == png
    # the per-sample check can be switched off
    assert _dataset(dataset_copy, check_annotations=False)[0]['seg_map_path'] == png


def test_segments_info_entry_without_pixels(dataset_copy):
    def add(ann):
        seg = dict(ann['annotations'][0]['segments_info'][0], id=12345678, area=40)
        ann['annotations'][0]['segments_info'].append(seg)

    _edit(dataset_copy, add)
    with pytest.raises(InvalidDataError, match=r'id\(s\) \[12345678\].*have no pixels'):
        _dataset(dataset_copy)[0]


def test_unknown_category_fails_at_init_naming_image_and_id(dataset_copy):
    def bad_cat(ann):
        ann['annotations'][1]['segments_info'][0]['category_id'] = 99

    ann = _edit(dataset_copy, bad_cat)
    with pytest.raises(InvalidDataError) as err:
        _dataset(dataset_copy)
    text = str(err.value)
    seg = ann['annotations'][1]['segments_info'][0]
    assert 'category_id 99' in text and repr(ann['annotations'][1]['file_name']) in text
    assert f"segment id {seg['id']}" in text and 'panoptic_train.json' in text
    assert 'not in the JSON `categories`' in text


def test_category_outside_metainfo_classes(synthetic_root):
    ann = load_json(osp.join(synthetic_root, 'annotations/panoptic_train.json'))
    used = {s['category_id'] for a in ann['annotations'] for s in a['segments_info']}
    dropped = next(c for c in ann['categories'] if c['id'] in used)
    kept = [c for c in ann['categories'] if c['id'] != dropped['id']]
    with pytest.raises(InvalidDataError, match='not one of the dataset classes'):
        MultiModalCocoPanopticDataset(
            data_root=synthetic_root, ann_file='annotations/panoptic_train.json',
            metainfo=dict(classes=tuple(c['name'] for c in kept),
                          thing_classes=tuple(c['name'] for c in kept if c['isthing']),
                          stuff_classes=tuple(c['name'] for c in kept if not c['isthing'])),
            data_prefix=dict(img='optical/train/', seg='annotations/panoptic_train/'),
            modalities=dict(optical='optical/train/'), pipeline=[])


def test_instances_json_disagreement(dataset_copy):
    path = osp.join(dataset_copy, 'annotations/instances_val.json')
    ins = load_json(path)
    gone = ins['annotations'].pop(0)
    save_json(path, ins)
    problems = check_instances_json(osp.join(dataset_copy, 'annotations/panoptic_val.json'), path)
    assert len(problems) == 1 and problems[0][0] == path
    assert f"(id {gone['image_id']})" in problems[0][1]
    assert f"({gone['category_id']}, 0, {gone['area']})" in problems[0][1]


def test_check_on_startup_lists_every_problem(dataset_copy):
    _edit(dataset_copy, lambda ann: ann['annotations'][0]['segments_info'].pop(0))
    tif = osp.join(dataset_copy, 'depth/train')
    name = sorted(os.listdir(tif))[1]
    depth = tifffile.imread(osp.join(tif, name))
    depth[0, 0] = np.inf
    tifffile.imwrite(osp.join(tif, name), depth)
    dataset = _dataset(dataset_copy, check_on_startup=True, lazy_init=True)
    dataset.pipeline.transforms.append(
        LoadMultiModalImages(modalities=dict(optical={}, depth={})))
    with pytest.raises(InvalidDataError) as err:
        dataset.full_init()
    text = str(err.value)
    assert '2 problem(s)' in text and osp.join(tif, name) in text and '+Inf' in text
    assert 'missing from `segments_info`' in text
