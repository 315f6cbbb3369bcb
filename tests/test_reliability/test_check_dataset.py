"""tools/misc/check_dataset.py: every per-file check over whole splits, one table, exit code."""
import importlib.util
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile

from reliability_helpers import EF_TINY, ROOT, load_json, save_json

spec = importlib.util.spec_from_file_location('check_dataset',
                                              osp.join(ROOT, 'tools/misc/check_dataset.py'))
check_dataset = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_dataset)


def _check(root, *extra):
    opts = [f'{dl}.dataset.data_root={root}/' for dl in ('train_dataloader', 'val_dataloader')]
    return check_dataset.main([osp.join(ROOT, EF_TINY), '--cfg-options'] + opts + list(extra))


def test_clean_dataset_exits_zero(synthetic_root, capsys):
    assert _check(synthetic_root) == 0
    out = capsys.readouterr().out
    assert 'train: 2 samples checked, 0 problem(s)' in out
    assert 'val: 2 samples checked, 0 problem(s)' in out


def test_every_problem_is_listed_with_its_file(dataset_copy, capsys):
    root = dataset_copy
    depth_dir, optical_dir = osp.join(root, 'depth/train'), osp.join(root, 'optical/val')
    names = sorted(os.listdir(depth_dir))
    depth = tifffile.imread(osp.join(depth_dir, names[1]))
    tifffile.imwrite(osp.join(depth_dir, names[1]), depth[:32])  # size mismatch
    depth[2, 3] = np.inf  # +Inf in depth
    tifffile.imwrite(osp.join(depth_dir, names[0]), depth)
    optical = sorted(os.listdir(optical_dir))
    cv2.imwrite(osp.join(optical_dir, optical[0]), np.zeros((64, 64), np.uint8))  # 1 band
    pan = osp.join(root, 'annotations/panoptic_val.json')
    ann = load_json(pan)
    things = {c['id'] for c in ann['categories'] if c['isthing']}
    segs = next(a['segments_info'] for a in ann['annotations']
                if any(s['category_id'] in things for s in a['segments_info']))
    segs.remove(next(s for s in segs if s['category_id'] in things))  # a PNG id without entry
    save_json(pan, ann)
    assert _check(root) == 1
    out = capsys.readouterr().out
    assert 'train: 2 samples checked, 2 problem(s)' in out
    assert osp.join(depth_dir, names[0]) in out and '+Inf' in out
    assert 'differ in size' in out and osp.join(depth_dir, names[1]) in out
    assert osp.join(optical_dir, optical[0]) in out and 'expects 3 channel(s)' in out
    assert 'missing from `segments_info`' in out
    assert 'only in the panoptic JSON [], only in the instances JSON [(' in out
    assert 'val: 2 samples checked' in out


def test_unknown_category_and_bad_split(dataset_copy, capsys):
    pan = osp.join(dataset_copy, 'annotations/panoptic_train.json')
    ann = load_json(pan)
    ann['annotations'][0]['segments_info'][0]['category_id'] = 99
    save_json(pan, ann)
    assert _check(dataset_copy, '--split', 'train') == 1
    out = capsys.readouterr().out
    assert 'category_id 99' in out and 'panoptic_train.json' in out
    with pytest.raises(KeyError, match='`bogus_dataloader.dataset`'):
        _check(dataset_copy, '--split', 'bogus')


def test_check_on_startup_from_the_config(dataset_copy):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmdet.registry import DATASETS

    from pmtseg_mm.datasets.transforms.loading import InvalidDataError
    depth_dir = osp.join(dataset_copy, 'depth/train')
    name = sorted(os.listdir(depth_dir))[0]
    depth = tifffile.imread(osp.join(depth_dir, name))
    depth[0, 0] = np.nan
    tifffile.imwrite(osp.join(depth_dir, name), depth)
    cfg = Config.fromfile(osp.join(ROOT, EF_TINY))
    init_default_scope('mmdet')
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.update(data_root=dataset_copy + '/', check_on_startup=True)
    with pytest.raises(InvalidDataError) as err:
        DATASETS.build(dataset_cfg)
    assert osp.join(depth_dir, name) in str(err.value) and 'NaN' in str(err.value)
