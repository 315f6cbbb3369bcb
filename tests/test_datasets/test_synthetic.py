"""The embedded synthetic dataset: determinism, annotation consistency, modality necessity."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tifffile
from panopticapi.utils import rgb2id
from pycocotools import mask as mask_utils

from pmtseg_mm.datasets.synthetic import (BUILDING, GRASS, ROAD, SYNTHETIC_METAINFO, TREE,
                                          SyntheticRSDataset, generate_synthetic)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _load(root, split, stem):
    optical = cv2.imread(osp.join(root, 'optical', split, stem + '.png'))[..., ::-1]
    depth = tifffile.imread(osp.join(root, 'depth', split, stem + '.tif'))
    pan = rgb2id(cv2.imread(osp.join(root, 'annotations', f'panoptic_{split}', stem + '.png'))
                 [..., ::-1])
    return optical, depth, pan


@pytest.fixture(scope='module')
def depth_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('syn'))
    summary = generate_synthetic(root, num_train=6, num_val=2, size=64, seed=3, progress=False)
    return root, summary


def test_deterministic_and_seed_dependent(depth_set, tmp_path):
    root, _ = depth_set
    again = str(tmp_path / 'again')
    generate_synthetic(again, num_train=6, num_val=2, size=64, seed=3, workers=2, progress=False)
    other = str(tmp_path / 'other')
    generate_synthetic(other, num_train=6, num_val=2, size=64, seed=4, progress=False)
    for stem in ('train_00000', 'train_00005'):
        a, b, c = _load(root, 'train', stem), _load(again, 'train', stem), _load(other, 'train', stem)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)  # same seed, also with parallel workers
        assert not np.array_equal(a[0], c[0])
    for name in ('panoptic_train.json', 'instances_val.json'):
        with open(osp.join(root, 'annotations', name)) as f1, \
                open(osp.join(again, 'annotations', name)) as f2:
            assert json.load(f1) == json.load(f2)


def test_panoptic_png_json_and_instances_agree(depth_set):
    root, summary = depth_set
    pan_json = json.load(open(osp.join(root, 'annotations', 'panoptic_train.json')))
    inst_json = json.load(open(osp.join(root, 'annotations', 'instances_train.json')))
    cats = {c['id']: c for c in pan_json['categories']}
    assert sum(c['isthing'] for c in cats.values()) == 3 and len(cats) == 6
    assert [c['name'] for c in pan_json['categories']] == list(SYNTHETIC_METAINFO['classes'])
    assert len(pan_json['images']) == 6 and summary['train']['images'] == 6
    things_per_image = {}
    for ann in pan_json['annotations']:
        _, _, pan = _load(root, 'train', ann['file_name'][:-4])
        ids, areas = np.unique(pan, return_counts=True)
        segs = {s['id']: s for s in ann['segments_info']}
        assert set(ids.tolist()) == set(segs)  # every pixel belongs to a listed segment
        for sid, area in zip(ids, areas):
            assert segs[sid]['area'] == area
            if cats[segs[sid]['category_id']]['isthing']:
                assert area >= 16
        things_per_image[ann['image_id']] = sorted(
            (s['category_id'], s['area']) for s in segs.values()
            if cats[s['category_id']]['isthing'])
    got = {}
    for inst in inst_json['annotations']:
        assert mask_utils.decode(inst['segmentation']).sum() == inst['area']
        got.setdefault(inst['image_id'], []).append((inst['category_id'], inst['area']))
    assert {k: sorted(v) for k, v in got.items()} == {k: v for k, v in things_per_image.items() if v}
    assert {c['id'] for c in inst_json['categories']} == {1, 2, 3}


def test_aux_modality_is_necessary(tmp_path):
    root = str(tmp_path)
    generate_synthetic(root, num_train=12, num_val=1, size=64, seed=0, progress=False)
    pan_json = json.load(open(osp.join(root, 'annotations', 'panoptic_train.json')))
    pix = {c: ([], []) for c in (BUILDING, ROAD, TREE, GRASS)}
    for ann in pan_json['annotations']:
        optical, depth, pan = _load(root, 'train', ann['file_name'][:-4])
        cat_map = np.zeros(pan.shape, int)
        for s in ann['segments_info']:
            cat_map[pan == s['id']] = s['category_id']
        for c in pix:
            pix[c][0].append(optical[cat_map == c].astype(float))
            pix[c][1].append(depth[cat_map == c])
    mean = {c: (np.concatenate(o).mean(0), np.concatenate(d).mean()) for c, (o, d) in pix.items()}
    # same optical colour distribution, metres apart in height
    assert np.abs(mean[BUILDING][0] - mean[ROAD][0]).max() < 12
    assert mean[BUILDING][1] - mean[ROAD][1] > 4
    assert np.abs(mean[TREE][0] - mean[GRASS][0]).max() < 12
    assert mean[TREE][1] - mean[GRASS][1] > 2


@pytest.mark.parametrize('aux, suffix, dtype', [('sar', '.tif', np.float32),
                                                ('nir', '.png', np.uint8)])
def test_aux_variants(tmp_path, aux, suffix, dtype):
    summary = generate_synthetic(str(tmp_path), num_train=2, num_val=1, size=32, aux=aux,
                                 progress=False)
    path = osp.join(str(tmp_path), aux, 'train', 'train_00000' + suffix)
    img = tifffile.imread(path) if suffix == '.tif' else cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert img.dtype == dtype and img.shape == (32, 32)
    assert list(summary['modality_stats']) == ['optical', aux]


def test_modality_stats_match_recomputation(depth_set):
    root, _ = depth_set
    stats = json.load(open(osp.join(root, 'modality_stats.json')))
    optical, depth = [], []
    for i in range(6):
        o, d, _ = _load(root, 'train', f'train_{i:05d}')
        optical.append(o.reshape(-1, 3).astype(float))
        depth.append(d.reshape(-1).astype(float))
    optical, depth = np.concatenate(optical), np.concatenate(depth)
    np.testing.assert_allclose(stats['optical']['mean'], optical.mean(0), atol=1e-3)
    np.testing.assert_allclose(stats['optical']['std'], optical.std(0), atol=1e-3)
    np.testing.assert_allclose(stats['depth']['mean'], [depth.mean()], atol=1e-3)
    np.testing.assert_allclose(stats['depth']['std'], [depth.std()], atol=1e-3)


def test_dataset_class_reads_it(depth_set):
    root, _ = depth_set
    ds = SyntheticRSDataset(data_root=root, ann_file='annotations/panoptic_val.json',
                            data_prefix=dict(img='optical/val/', seg='annotations/panoptic_val/'),
                            modalities=dict(optical='optical/val/', depth='depth/val/'),
                            modality_suffixes=dict(depth='.tif'), pipeline=[])
    info = ds[0]
    assert len(ds) == 2 and osp.exists(info['modality_paths']['depth'])
    assert ds.metainfo['thing_classes'] == ('building', 'tree', 'car')


@pytest.mark.parametrize('kwargs, words', [
    (dict(aux='lidar'), "unknown `aux`='lidar'"),
    (dict(size=48), 'multiple of 32'),
    (dict(num_train=0), '`num_train` >= 1'),
    (dict(num_val=-1), '`num_val` >= 0'),
])
def test_bad_arguments(tmp_path, kwargs, words):
    args = dict(out_dir=str(tmp_path), num_train=1, num_val=1, size=32, progress=False)
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        generate_synthetic(**args)
    assert words in str(err.value)


def test_cli(tmp_path):
    proc = subprocess.run([
        sys.executable, 'tools/dataset_converters/synthetic.py', '--out', str(tmp_path), '--num-train',
        '2', '--num-val', '1', '--size', '32', '--aux', 'nir', '--seed', '1'
    ], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['train']['images'] == 2
    assert osp.exists(tmp_path / 'nir' / 'val' / 'val_00000.png')
    bad = subprocess.run([sys.executable, 'tools/dataset_converters/synthetic.py', '--out',
                          str(tmp_path), '--aux', 'lidar'], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "invalid choice: 'lidar'" in bad.stderr
