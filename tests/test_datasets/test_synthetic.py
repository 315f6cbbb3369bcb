"""The embedded synthetic dataset: determinism, annotation consistency, modality necessity."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tifffile
from panopticapi.utils import rgb2id
from pycocotools import mask as mask_utils

from pmtseg_mm.datasets import synthetic
from pmtseg_mm.datasets.synthetic import (BUILDING, CAR, GRASS, ROAD, SYNTHETIC_METAINFO, TREE,
                                          WATER, SyntheticRSDataset, generate_synthetic)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLI = osp.join(ROOT, 'tools', 'dataset_converters', 'synthetic.py')


def _json(root, name):
    with open(osp.join(root, 'annotations', name) if name != 'modality_stats.json' else
              osp.join(root, name)) as f:
        return json.load(f)


def _load(root, split, stem, aux='depth'):
    """(optical RGB, aux, panoptic id map) of one sample as written on disk."""
    optical = cv2.imread(osp.join(root, 'optical', split, stem + '.png'))[..., ::-1]
    if aux == 'nir':
        aux_img = cv2.imread(osp.join(root, aux, split, stem + '.png'), cv2.IMREAD_UNCHANGED)
    else:
        aux_img = tifffile.imread(osp.join(root, aux, split, stem + '.tif'))
    pan = rgb2id(cv2.imread(osp.join(root, 'annotations', f'panoptic_{split}', stem + '.png'))
                 [..., ::-1])
    return optical, aux_img, pan


def _category_maps(root, split='train', aux='depth'):
    """Yield (optical, aux, panoptic ids, category map, segments by id, image info)."""
    pan_json = _json(root, f'panoptic_{split}.json')
    for img, ann in zip(pan_json['images'], pan_json['annotations']):
        optical, aux_img, pan = _load(root, split, ann['file_name'][:-4], aux)
        segs = {s['id']: s for s in ann['segments_info']}
        cat_map = np.zeros(pan.shape, int)
        for sid, s in segs.items():
            cat_map[pan == sid] = s['category_id']
        yield optical.astype(float), aux_img.astype(float), pan, cat_map, segs, img


@pytest.fixture(scope='module')
def depth_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('syn'))
    summary = generate_synthetic(root, num_train=3, num_val=2, size=64, seed=3, progress=False)
    return root, summary


@pytest.fixture(scope='module')
def many_small(tmp_path_factory):
    """60 scenes at 32 px: crowded enough to hit the small-segment corner cases."""
    root = str(tmp_path_factory.mktemp('many'))
    return root, generate_synthetic(root, num_train=60, num_val=1, size=32, seed=0,
                                    progress=False)


@pytest.fixture(scope='module')
def necessity_set(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('nec'))
    generate_synthetic(root, num_train=16, num_val=1, size=128, seed=0, progress=False)
    return root


def test_deterministic_and_seed_dependent(depth_set, tmp_path):
    root, summary = depth_set
    again = str(tmp_path / 'again')
    assert generate_synthetic(again, num_train=3, num_val=2, size=64, seed=3, workers=2,
                              progress=False)['train'] == summary['train']
    other = str(tmp_path / 'other')
    generate_synthetic(other, num_train=3, num_val=2, size=64, seed=4, progress=False)
    for split, stem in (('train', 'train_00000'), ('train', 'train_00002'), ('val', 'val_00001')):
        a, b, c = (_load(r, split, stem) for r in (root, again, other))
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)  # same seed, also with parallel workers
        assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[1], c[1])
    for name in ('panoptic_train.json', 'instances_train.json', 'panoptic_val.json',
                 'instances_val.json', 'modality_stats.json'):
        assert _json(root, name) == _json(again, name)
    assert _json(root, 'panoptic_train.json') != _json(other, 'panoptic_train.json')


def test_layout_and_summary(depth_set):
    root, summary = depth_set
    for path in ('optical/train/train_00002.png', 'depth/train/train_00002.tif',
                 'optical/val/val_00001.png', 'depth/val/val_00001.tif',
                 'annotations/panoptic_val/val_00001.png', 'modality_stats.json'):
        assert osp.isfile(osp.join(root, path)), path
    assert not osp.exists(osp.join(root, 'optical', 'train', 'train_00003.png'))
    assert sorted(os.listdir(osp.join(root, 'annotations'))) == [
        'instances_train.json', 'instances_val.json', 'panoptic_train', 'panoptic_train.json',
        'panoptic_val', 'panoptic_val.json']  # no leftover .tmp files
    assert summary['paths']['panoptic_val'] == osp.join(root, 'annotations', 'panoptic_val.json')
    assert (summary['train']['images'], summary['val']['images']) == (3, 2)
    assert sum(summary['val']['conditions'].values()) == 2
    pan = _json(root, 'panoptic_val.json')
    assert [i['file_name'] for i in pan['images']] == ['val_00000.png', 'val_00001.png']
    assert {(i['width'], i['height']) for i in pan['images']} == {(64, 64)}
    counts = {n: 0 for n in SYNTHETIC_METAINFO['classes']}
    for ann in pan['annotations']:
        for s in ann['segments_info']:
            counts[SYNTHETIC_METAINFO['classes'][s['category_id'] - 1]] += 1
    assert summary['val']['segments'] == counts


def test_categories(depth_set):
    categories = _json(depth_set[0], 'panoptic_train.json')['categories']
    assert [c['id'] for c in categories] == [1, 2, 3, 4, 5, 6]
    assert [c['isthing'] for c in categories] == [1, 1, 1, 0, 0, 0]
    assert [c['name'] for c in categories] == list(SYNTHETIC_METAINFO['classes'])
    assert categories[0]['color'] == [238, 118, 33] and categories[5]['color'] == [0, 0, 238]
    assert SYNTHETIC_METAINFO['thing_classes'] == ('building', 'tree', 'car')
    assert SYNTHETIC_METAINFO['stuff_classes'] == ('road', 'grass', 'water')


def test_panoptic_png_json_and_instances_agree(depth_set):
    root, _ = depth_set
    for split in ('train', 'val'):
        inst_json = _json(root, f'instances_{split}.json')
        assert [c['id'] for c in inst_json['categories']] == [1, 2, 3]
        things_per_image = {}
        for _, _, pan, cat_map, segs, img in _category_maps(root, split):
            ids, areas = np.unique(pan, return_counts=True)
            assert ids.tolist() == sorted(segs)  # every pixel in a listed segment and vice versa
            for sid, area in zip(ids.tolist(), areas.tolist()):
                ys, xs = np.nonzero(pan == sid)
                assert segs[sid]['area'] == area >= 16 and segs[sid]['iscrowd'] == 0
                assert segs[sid]['bbox'] == [xs.min(), ys.min(), xs.ptp() + 1, ys.ptp() + 1]
            stuff = [s['category_id'] for s in segs.values() if s['category_id'] > 3]
            assert len(stuff) == len(set(stuff)) >= 1  # one segment per stuff class present
            things_per_image[img['id']] = sorted(
                (s['category_id'], s['area'], s['bbox']) for s in segs.values()
                if s['category_id'] <= 3)
        got = {}
        for inst in inst_json['annotations']:
            mask = mask_utils.decode(inst['segmentation'])
            assert mask.sum() == inst['area'] and inst['iscrowd'] == 0
            got.setdefault(inst['image_id'], []).append(
                (inst['category_id'], inst['area'], inst['bbox']))
        assert len({i['id'] for i in inst_json['annotations']}) == len(inst_json['annotations'])
        assert {k: sorted(v) for k, v in got.items()} == {
            k: v for k, v in things_per_image.items() if v}


def test_no_segment_below_min_area(many_small):
    root, summary = many_small
    pan_json = _json(root, 'panoptic_train.json')
    areas = [s['area'] for a in pan_json['annotations'] for s in a['segments_info']]
    sides = [min(s['bbox'][2:]) for a in pan_json['annotations'] for s in a['segments_info']]
    assert min(areas) >= 16 and min(sides) >= 1
    # all three thing classes occur even at 32 px
    assert min(summary['train']['segments'][c] for c in ('building', 'tree', 'car')) >= 10


def test_aux_modality_is_necessary(necessity_set):
    """Per scene: roofs/roads, trees/grass and touching buildings have the same optical colour up
    to the texture (max channel gap of the means, reference: roofs vs grass in clear scenes) but
    are metres apart in height."""
    gaps = {key: [] for key in ('roof-road', 'tree-grass', 'roof-grass', 'touching')}
    height = {key: [] for key in ('roof-road', 'tree-grass', 'touching')}
    for optical, depth, pan, cat_map, segs, img in _category_maps(necessity_set):
        mean = {c: (optical[cat_map == c].mean(0), depth[cat_map == c].mean())
                for c in (BUILDING, ROAD, TREE, GRASS) if (cat_map == c).any()}
        for key, a, b in (('roof-road', BUILDING, ROAD), ('tree-grass', TREE, GRASS),
                          ('roof-grass', BUILDING, GRASS)):
            if a in mean and b in mean and (key != 'roof-grass' or img['condition'] == 'clear'):
                gaps[key].append(np.abs(mean[a][0] - mean[b][0]).max())
                height.get(key, []).append(mean[a][1] - mean[b][1])
        for p, q in ((pan[:, 1:], pan[:, :-1]), (pan[1:], pan[:-1])):
            pairs = {(int(i), int(j)) for i, j in zip(p[p != q], q[p != q])
                     if segs[i]['category_id'] == segs[j]['category_id'] == BUILDING}
            for i, j in pairs:
                gaps['touching'].append(np.abs(optical[pan == i].mean(0) -
                                               optical[pan == j].mean(0)).max())
                height['touching'].append(abs(depth[pan == i].mean() - depth[pan == j].mean()))
    assert min(len(v) for v in gaps.values()) >= 10
    # the generator's colours (_render_optical): roof grey in [95, 165], grass R and B in
    # [40, 70]: in clear scenes a channel differs by at least 95 - 70 = 25
    assert min(gaps['roof-grass']) > 25
    # pairs sharing one colour differ only by the texture, N(0, 10) per 16 px cell: the means of
    # two regions covering m cells each differ by N(0, 10·sqrt(2/m)), a few grey levels (median
    # ~0.67σ < 6), 15 is beyond 2.5σ for the smallest regions (m ~ 2)
    for key in ('roof-road', 'tree-grass', 'touching'):
        assert np.median(gaps[key]) < 6 and max(gaps[key]) < 15, key
    # heights (_add_buildings, _add_trees): roofs linspace(4, 15, 4) ± 0.5 -> ≥ 3.5 m over 0 m
    # roads; a crown is 1 + U(3, 10)·sqrt(1 - d²), whose mean over a disc is ≥ 1 + 3·2/3 = 3 m
    assert min(height['roof-road']) > 3.5 - 0.5 and min(height['tree-grass']) > 3
    # touching buildings take distinct steps of linspace(4, 15, 4) (11/3 m apart) ± 0.5 each
    assert min(height['touching']) > 11 / 3 - 2 * 0.5 - 0.2  # 2.67 m less the depth noise


def test_dark_and_foggy_quarter(many_small):
    root, summary = many_small
    conditions = summary['train']['conditions']
    assert sum(conditions.values()) == 60 and 8 <= conditions['dark'] + conditions['fog'] <= 22
    contrast = {c: [] for c in ('clear', 'dark', 'fog')}
    depth_std = {c: [] for c in ('clear', 'dark', 'fog')}
    for optical, depth, _, cat_map, _, img in _category_maps(root):
        contrast[img['condition']].append(optical[cat_map == GRASS].mean() -
                                          optical[cat_map == ROAD].mean())
        depth_std[img['condition']].append(depth.std())
    clear = np.abs(contrast['clear']).mean()
    for c in ('dark', 'fog'):  # low optical contrast, the aux modality untouched
        assert np.abs(contrast[c]).mean() < 0.5 * clear
        assert 0.5 < np.mean(depth_std[c]) / np.mean(depth_std['clear']) < 2


def test_aux_variants(depth_set, tmp_path):
    root, _ = depth_set
    sar, nir = str(tmp_path / 'sar'), str(tmp_path / 'nir')
    summary = generate_synthetic(sar, num_train=3, num_val=2, size=64, aux='sar', seed=3,
                                 progress=False)
    assert list(summary['modality_stats']) == ['optical', 'sar']
    generate_synthetic(nir, num_train=3, num_val=2, size=64, aux='nir', seed=3, progress=False)
    # the layout and optical stream do not depend on the aux modality
    np.testing.assert_array_equal(_load(root, 'val', 'val_00001')[0],
                                  _load(sar, 'val', 'val_00001', 'sar')[0])
    db, refl, grey = ({c: [] for c in range(1, 7)} for _ in range(3))
    walls = []
    for optical, img, _, cat_map, _, _ in _category_maps(sar, aux='sar'):
        assert img.shape == (64, 64)
        wall = np.zeros(cat_map.shape, bool)  # the row below each building (facing the sensor)
        wall[1:] = (cat_map[:-1] == BUILDING) & (cat_map[1:] != BUILDING)
        walls.append(img[wall])
        for c in db:
            db[c].append(img[(cat_map == c) & ~wall])
    for optical, img, _, cat_map, _, _ in _category_maps(nir, aux='nir'):
        for c in refl:
            refl[c].append(img[cat_map == c])
            grey[c].append(optical[cat_map == c])
    assert tifffile.imread(osp.join(sar, 'sar', 'train', 'train_00000.tif')).dtype == np.float32
    raw = cv2.imread(osp.join(nir, 'nir', 'train', 'train_00000.png'), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint8 and raw.shape == (64, 64)
    db, refl, grey = ({c: np.concatenate(v) for c, v in d.items()} for d in (db, refl, grey))
    mean_db = {c: v.mean() for c, v in db.items() if len(v)}
    assert mean_db[ROAD] < mean_db[GRASS] < mean_db[TREE] and mean_db[CAR] > mean_db[GRASS]
    if WATER in mean_db:
        assert mean_db[WATER] < mean_db[ROAD]
    assert np.concatenate(walls).mean() > 3 > mean_db[CAR]  # double bounce: brightest
    # 4-look intensity speckle Gamma(4, 1/4) on flat -10 dB grass: mean 1, std 1/sqrt(4), so the
    # coefficient of variation is 1/2 (sampling error of a few thousand pixels: ~0.01)
    linear = 10**(db[GRASS] / 10)
    assert linear.std() / linear.mean() == pytest.approx(0.5, abs=0.05)
    # NIR table: roofs 115 vs roads 55 (60 apart), texture N(0, 6) per cell and pixel noise
    # N(0, 5) average out over all scenes; optically both are one grey (texture N(0, 10))
    assert refl[BUILDING].mean() - refl[ROAD].mean() == pytest.approx(60, abs=10)
    assert np.abs(grey[BUILDING].mean(0) - grey[ROAD].mean(0)).max() < 12
    assert refl[GRASS].mean() == pytest.approx(175, abs=10)
    assert refl[TREE].mean() == pytest.approx(195, abs=10)


def test_modality_stats_match_recomputation(depth_set):
    root, summary = depth_set
    stats = _json(root, 'modality_stats.json')
    assert stats == summary['modality_stats'] and list(stats) == ['optical', 'depth']
    optical, depth = [], []
    for i in range(3):
        o, d, _ = _load(root, 'train', f'train_{i:05d}')
        optical.append(o.reshape(-1, 3).astype(float))
        depth.append(d.reshape(-1).astype(float))
    optical, depth = np.concatenate(optical), np.concatenate(depth)
    np.testing.assert_allclose(stats['optical']['mean'], optical.mean(0), atol=1e-3)
    np.testing.assert_allclose(stats['optical']['std'], optical.std(0), atol=1e-3)
    np.testing.assert_allclose(stats['depth']['mean'], [depth.mean()], atol=1e-3)
    np.testing.assert_allclose(stats['depth']['std'], [depth.std()], atol=1e-3)
    assert stats['optical']['mean'][1] > stats['optical']['mean'][2]  # RGB order: green scenes


def test_dataset_class_reads_it(depth_set):
    root, _ = depth_set
    ds = SyntheticRSDataset(data_root=root, ann_file='annotations/panoptic_val.json',
                            data_prefix=dict(img='optical/val/', seg='annotations/panoptic_val/'),
                            modalities=dict(optical='optical/val/', depth='depth/val/'),
                            modality_suffixes=dict(depth='.tif'), pipeline=[])
    info = ds[1]
    assert len(ds) == 2
    assert info['modality_paths']['depth'] == osp.join(root, 'depth', 'val', 'val_00001.tif')
    assert osp.exists(info['modality_paths']['depth'])
    assert ds.metainfo['thing_classes'] == ('building', 'tree', 'car')
    segs = _json(root, 'panoptic_val.json')['annotations'][1]['segments_info']
    assert len(info['segments_info']) == len(segs)  # mmdet dropped no segment


def test_crash_leaves_no_json(tmp_path, monkeypatch):
    root = str(tmp_path)
    generate_synthetic(root, num_train=2, num_val=1, size=32, progress=False)
    make_sample = synthetic._make_sample

    def failing(job):
        if job[-1] == 1:
            raise RuntimeError('disk full')
        return make_sample(job)

    monkeypatch.setattr(synthetic, '_make_sample', failing)
    with pytest.raises(RuntimeError, match='disk full'):
        generate_synthetic(root, num_train=2, num_val=1, size=32, progress=False)
    # the stale JSON files of the first run are gone too, and no tmp file is left
    assert sorted(os.listdir(osp.join(root, 'annotations'))) == ['panoptic_train', 'panoptic_val']
    assert not osp.exists(osp.join(root, 'modality_stats.json'))


@pytest.mark.parametrize('kwargs, error, words', [
    (dict(aux='lidar'), ValueError, "unknown `aux`='lidar'; allowed: ('depth', 'sar', 'nir')"),
    (dict(size=48), ValueError, '`size` must be a multiple of 32 and >= 32, got 48'),
    (dict(size=0), ValueError, '`size` must be a multiple of 32 and >= 32, got 0'),
    (dict(size=64.0), TypeError, '`size` must be an int, got 64.0'),
    (dict(num_train=0), ValueError, 'need `num_train` >= 1, got 0'),
    (dict(num_train=-3), ValueError, 'need `num_train` >= 1, got -3'),
    (dict(num_val=-1), ValueError, 'need `num_val` >= 0, got -1'),
    (dict(workers=-1), ValueError, 'need `workers` >= 0, got -1'),
])
def test_bad_arguments(tmp_path, kwargs, error, words):
    args = dict(out_dir=str(tmp_path / 'out'), num_train=1, num_val=1, size=32, progress=False)
    args.update(kwargs)
    with pytest.raises(error) as err:
        generate_synthetic(**args)
    assert words in str(err.value)
    assert not osp.exists(tmp_path / 'out')  # nothing written


def test_cli(tmp_path, capsys):
    proc = subprocess.run([
        sys.executable, CLI, '--out', str(tmp_path), '--num-train', '3', '--num-val', '1',
        '--size', '32', '--aux', 'nir', '--seed', '1', '--workers', '2'
    ], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary['train']['images'], summary['val']['images'], summary['aux']) == (3, 1, 'nir')
    assert osp.exists(tmp_path / 'nir' / 'val' / 'val_00000.png')
    spec = importlib.util.spec_from_file_location('synthetic_cli', CLI)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(['--out', str(tmp_path), '--aux', 'lidar'])
    assert exit_info.value.code == 2 and "invalid choice: 'lidar'" in capsys.readouterr().err
