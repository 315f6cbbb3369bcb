"""Dataset converters (SemCity Toulouse, UBCV2, VALID) on tiny fixtures in each raw format."""
import json
import math
import os
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import tifffile
from mmdet.datasets.transforms import LoadPanopticAnnotations
from panopticapi.utils import rgb2id

from pmtseg_mm.datasets.semcity_toulouse import SEMCITY_RAW_CLASSES, SemCityToulouseDataset
from pmtseg_mm.datasets.transforms.loading import LoadMultiModalImages
from pmtseg_mm.datasets.ubcv2 import UBCV2Dataset
from pmtseg_mm.datasets.valid import VALIDDataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'dataset_converters')
sys.path.insert(0, TOOLS)

import _common  # noqa: E402
import semcity_toulouse  # noqa: E402
import ubcv2  # noqa: E402
import valid  # noqa: E402

ConversionError = _common.ConversionError


def _json(path):
    with open(path) as f:
        return json.load(f)


def _check_consistency(out, split):
    """Every PNG segment is in the JSON with its category and area, and vice versa."""
    pan = _json(osp.join(out, 'annotations', f'panoptic_{split}.json'))
    ins = _json(osp.join(out, 'annotations', f'instances_{split}.json'))
    cats = {c['id']: c for c in pan['categories']}
    n_things = 0
    for ann in pan['annotations']:
        ids = rgb2id(cv2.imread(osp.join(out, 'annotations', f'panoptic_{split}', ann['file_name']))
                     [..., ::-1])
        found = {int(i): int(n) for i, n in zip(*np.unique(ids, return_counts=True)) if i}
        assert found == {s['id']: s['area'] for s in ann['segments_info']}
        stuff = [s['category_id'] for s in ann['segments_info'] if not cats[s['category_id']]['isthing']]
        assert len(stuff) == len(set(stuff))  # one segment per stuff class
        n_things += sum(cats[s['category_id']]['isthing'] for s in ann['segments_info'])
    assert len(ins['annotations']) == n_things
    assert all(cats[c['id']]['isthing'] for c in ins['categories'])
    assert not [f for f in os.listdir(osp.join(out, 'annotations')) if '.tmp' in f]
    return pan, ins


def _no_json(out, split):
    return not any(osp.exists(osp.join(out, 'annotations', f'{k}_{split}.json'))
                   for k in ('panoptic', 'instances'))


# ----------------------------------------------------------------------------- SemCity Toulouse
H, W = 260, 300  # 2 x 2 patches of 128 per tile


def _semcity_labels():
    lab = np.full((H, W), 3, np.uint8)  # pervious surface
    lab[:, :150] = 1  # impervious surface
    lab[10:40, 10:42] = 2  # building ...
    lab[10:40, 45:50] = 2  # ... incl. 5 columns outside every instance (crowd)
    lab[50:55, 120:140] = 2  # building across the c00/c01 patch border
    lab[60:64, 60:70] = 5  # car
    lab[100:110, :128] = 0  # void
    lab[200:250, 200:250] = 6  # water
    inst = np.zeros((H, W), np.uint16)
    inst[10:40, 10:30] = 5
    inst[10:40, 30:45] = 9  # covers 3 impervious columns: the instance wins
    inst[50:55, 120:140] = 7
    return lab, inst


@pytest.fixture
def semcity_src(tmp_path):
    src = tmp_path / 'semcity'
    rng = np.random.default_rng(0)
    lab, inst = _semcity_labels()
    colours = np.array([c for _, c in SEMCITY_RAW_CLASSES], np.uint8)
    for d in ('img_multispec_05/TLS_BDSD_M', 'semantic_05/TLS_indMap', 'semantic_05/TLS_GT',
              'instances_building_05/TLS_instances_building_indMap'):
        (src / d).mkdir(parents=True)
    for tile, annot in (('03', 3), ('04', 3), ('07', 2), ('08', 2)):
        bands = rng.integers(100, 4000, (8, H, W), dtype=np.uint16)
        tifffile.imwrite(src / f'img_multispec_05/TLS_BDSD_M/TLS_BDSD_M_{tile}.tif', bands,
                         planarconfig='separate')
        tifffile.imwrite(src / f'semantic_05/TLS_indMap/TLS_indMap_{tile}_{annot}.tif', lab)
        tifffile.imwrite(src / f'semantic_05/TLS_GT/TLS_GT_{tile}_{annot}.tif', colours[lab])
        tifffile.imwrite(src / 'instances_building_05/TLS_instances_building_indMap/'
                         f'TLS_instances_building_indMap_{tile}.tif', inst)
    # an earlier all-impervious annotation of tile 04: 'auto' must pick annotator 3
    tifffile.imwrite(src / 'semantic_05/TLS_indMap/TLS_indMap_04_1.tif', np.ones((H, W), np.uint8))
    return src


def _semcity(src, out, *extra):
    return semcity_toulouse.main(['--src', str(src), '--out', str(out), '--workers', '1', *extra])


def _segments_by_cat(pan, file_name):
    image_id = next(i['id'] for i in pan['images'] if i['file_name'] == file_name)
    ann = next(a for a in pan['annotations'] if a['image_id'] == image_id)
    return sorted((s['category_id'], s['area'], s['iscrowd']) for s in ann['segments_info'])


def test_semcity_patches_categories_and_panoptic(semcity_src, tmp_path):
    out = tmp_path / 'out'
    assert _semcity(semcity_src, out) == dict(train=8, val=8)
    pan, ins = _check_consistency(str(out), 'train')
    _check_consistency(str(out), 'val')
    assert [(c['id'], c['name'], c['isthing']) for c in pan['categories']] == [
        (1, 'building', 1), (2, 'impervious surface', 0), (3, 'pervious surface', 0),
        (4, 'high vegetation', 0), (5, 'car', 0), (6, 'water', 0), (7, 'sport venues', 0)]
    assert [c['name'] for c in pan['categories']] == list(SemCityToulouseDataset.METAINFO['classes'])
    assert sorted(i['file_name'] for i in pan['images'])[:2] == ['TLS_04_r00_c00.png',
                                                                 'TLS_04_r00_c01.png']
    assert len(os.listdir(out / 'optical' / 'val')) == 8 and len(os.listdir(out / 'nir' / 'train')) == 8
    # r00_c00: instances 5 (30x20), 9 (30x15), 7 (5x8 of 5x20), crowd building 30x5, car 4x10,
    # void 10x128, impervious = the rest
    assert _segments_by_cat(pan, 'TLS_04_r00_c00.png') == [
        (1, 40, 0), (1, 150, 1), (1, 450, 0), (1, 600, 0), (2, 128 * 128 - 2560, 0), (5, 40, 0)]
    # r00_c01: rest of instance 7 (5x12), impervious x<150, pervious beyond
    assert _segments_by_cat(pan, 'TLS_04_r00_c01.png') == [(1, 60, 0), (2, 22 * 128 - 60, 0),
                                                           (3, 106 * 128, 0)]
    assert _segments_by_cat(pan, 'TLS_04_r01_c01.png') == [(2, 22 * 128, 0),
                                                           (3, 106 * 128 - 2500, 0), (6, 2500, 0)]
    # per train tile: 3 instances + 1 crowd region in c00, 1 instance in c01
    assert len(ins['annotations']) == 2 * 5 and sum(a['iscrowd'] for a in ins['annotations']) == 2
    stats = _json(out / 'modality_stats.json')
    assert len(stats['optical']['mean']) == 3 and len(stats['nir']['std']) == 1
    assert 'p1' not in stats['optical']  # 8-bit output
    optical = cv2.imread(str(out / 'optical' / 'train' / 'TLS_04_r00_c00.png'), cv2.IMREAD_UNCHANGED)
    assert optical.shape == (128, 128, 3) and optical.dtype == np.uint8
    red = tifffile.imread(semcity_src / 'img_multispec_05/TLS_BDSD_M/TLS_BDSD_M_04.tif')[4]
    lo, hi = np.percentile(red, [2, 98])
    expected = np.clip(np.rint((red[:128, :128].astype(np.float32) - lo) / (hi - lo) * 255), 0, 255)
    np.testing.assert_allclose(optical[..., 2], expected, atol=1)  # file is RGB, cv2 gives BGR


def test_semcity_options(semcity_src, tmp_path):
    colour, index = tmp_path / 'colour', tmp_path / 'index'
    _semcity(semcity_src, index, '--tiles-val', '03', '--unmatched-building', 'void')
    _semcity(semcity_src, colour, '--tiles-val', '03', '--unmatched-building', 'void',
             '--label-format', 'colour')
    a = _json(index / 'annotations/panoptic_val.json')
    assert a == _json(colour / 'annotations/panoptic_val.json') and len(a['images']) == 4
    assert _segments_by_cat(a, 'TLS_03_r00_c00.png') == [
        (1, 40, 0), (1, 450, 0), (1, 600, 0), (2, 128 * 128 - 2560, 0), (5, 40, 0)]
    # annotator 'first' (= _1, all impervious) for tile 04: no car, no crowd building
    first = tmp_path / 'first'
    _semcity(semcity_src, first, '--annotator', 'first', '--tiles-val', '03')
    assert _segments_by_cat(_json(first / 'annotations/panoptic_train.json'), 'TLS_04_r00_c00.png') \
        == [(1, 40, 0), (1, 450, 0), (1, 600, 0), (2, 128 * 128 - 1090, 0)]
    # 16-bit: the raw bands 5/3/2 and 7 (1-indexed), with 1/99 % percentiles in the statistics
    raw = tmp_path / 'raw16'
    _semcity(semcity_src, raw, '--keep-16bit', '--car-instances', '--tiles-val', '03')
    bands = tifffile.imread(semcity_src / 'img_multispec_05/TLS_BDSD_M/TLS_BDSD_M_08.tif')
    np.testing.assert_array_equal(tifffile.imread(raw / 'optical/train/TLS_08_r01_c00.tif'),
                                  np.moveaxis(bands[[4, 2, 1], 128:256, :128], 0, -1))
    np.testing.assert_array_equal(tifffile.imread(raw / 'nir/train/TLS_08_r00_c01.tif'),
                                  bands[6, :128, 128:256])
    stats = _json(raw / 'modality_stats.json')
    both = np.stack([tifffile.imread(semcity_src / f'img_multispec_05/TLS_BDSD_M/TLS_BDSD_M_{t}.tif')
                     [4, :256, :256] for t in ('04', '08')])
    assert stats['optical']['mean'][0] == pytest.approx(both.mean(), abs=1e-3)
    assert stats['optical']['std'][0] == pytest.approx(both.std(), abs=1e-3)
    assert 100 <= stats['nir']['p1'][0] < stats['nir']['p99'][0] < 4000
    pan = _json(raw / 'annotations/panoptic_train.json')
    assert [(c['name'], c['isthing']) for c in pan['categories'][:3]] == [
        ('building', 1), ('car', 1), ('impervious surface', 0)]
    assert (2, 40, 0) in _segments_by_cat(pan, 'TLS_04_r00_c00.png')  # car instance


def test_semcity_bad_inputs(semcity_src, tmp_path):
    gt = semcity_src / 'semantic_05/TLS_GT/TLS_GT_07_2.tif'
    bad = tifffile.imread(gt)
    bad[3, 5] = (7, 8, 9)
    tifffile.imwrite(gt, bad)
    with pytest.raises(ConversionError, match=r'TLS_GT_07_2\.tif.*\(7, 8, 9\).*x=5, y=3'):
        _semcity(semcity_src, tmp_path / 'o1', '--label-format', 'colour')
    assert _no_json(tmp_path / 'o1', 'val')
    assert _json(tmp_path / 'o1/annotations/panoptic_train.json')['images']  # train completed

    out = tmp_path / 'o2'
    _semcity(semcity_src, out)  # a complete earlier run ...
    tifffile.imwrite(semcity_src / 'semantic_05/TLS_indMap/TLS_indMap_03_3.tif',
                     np.ones((H - 10, W), np.uint8))
    with pytest.raises(ConversionError, match=r'label map .*TLS_indMap_03_3\.tif is 250x300 but its '
                       r'image is 260x300'):
        _semcity(semcity_src, out)  # ... whose val JSON the failing re-run removes
    assert _no_json(out, 'val') and not _no_json(out, 'train')

    os.remove(semcity_src / 'instances_building_05/TLS_instances_building_indMap/'
              'TLS_instances_building_indMap_08.tif')
    with pytest.raises(ConversionError, match='missing input file .*indMap_08.tif'):
        _semcity(semcity_src, tmp_path / 'o3')
    assert _no_json(tmp_path / 'o3', 'train')


# ----------------------------------------------------------------------------- UBCV2
@pytest.fixture
def ubc_src(tmp_path):
    src = tmp_path / 'ubc'
    rng = np.random.default_rng(1)
    for split, names in (('train', ['P0001', 'P0002']), ('val', ['P0003'])):
        for d in ('rgb', 'sar'):
            (src / split / d).mkdir(parents=True)
        for name in names:
            tifffile.imwrite(src / split / 'rgb' / f'{name}.tif',
                             rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
            tifffile.imwrite(src / split / 'sar' / f'{name}.tif',
                             rng.normal(0.3, 0.1, (64, 64)).astype(np.float32))
    small = np.zeros((64, 64), np.uint8)
    small[20:30, 22:32] = 1
    rle = mask_utils.encode(np.asfortranarray(small))
    rle['counts'] = rle['counts'].decode()
    uncompressed = dict(size=[64, 64], counts=[64 * 5, 64 * 3, 64 * 56])  # columns 5-7
    cats = [dict(id=100 + i, name=n) for i, n in enumerate(UBCV2Dataset.METAINFO['thing_classes'])]
    (src / 'annotations').mkdir()
    with open(src / 'annotations/roof_fine_train.json', 'w') as f:
        json.dump(dict(categories=cats, images=[
            dict(id=7, file_name='P0001.tif', height=64, width=64),
            dict(id=8, file_name='P0002.tif', height=64, width=64)], annotations=[
            dict(id=1, image_id=7, category_id=101, segmentation=rle, iscrowd=0),  # gable, small
            dict(id=2, image_id=7, category_id=100, iscrowd=0,  # flat, large, listed later
                 segmentation=[[10, 10, 40, 10, 40, 40, 10, 40]])]), f)
    with open(src / 'annotations/roof_fine_val.json', 'w') as f:
        json.dump(dict(categories=cats, images=[dict(id=1, file_name='P0003.tif', height=64,
                                                     width=64)], annotations=[
            dict(id=5, image_id=1, category_id=111, segmentation=uncompressed, iscrowd=0)]), f)
    return src


def _ubc(src, out, *extra):
    return ubcv2.main(['--src', str(src), '--out', str(out), '--workers', '1', *extra])


def test_ubcv2_overlaps_background_and_stats(ubc_src, tmp_path):
    out = tmp_path / 'out'
    assert _ubc(ubc_src, out) == dict(train=2, val=1)
    pan, ins = _check_consistency(str(out), 'train')
    assert len(pan['categories']) == 13 and pan['categories'][12] == dict(
        id=13, name='background', supercategory='background', isthing=0, color=[60, 60, 60])
    assert [c['id'] for c in ins['categories']] == list(range(1, 13))
    # the smaller gable roof (id 2) stays whole on top of the larger flat roof (id 1)
    assert _segments_by_cat(pan, 'P0001.png') == [(1, 900 - 100, 0), (2, 100, 0),
                                                  (13, 4096 - 900, 0)]
    gable = next(a for a in ins['annotations'] if a['category_id'] == 2)
    assert gable['bbox'] == [22, 20, 10, 10] and gable['area'] == 100
    assert _segments_by_cat(pan, 'P0002.png') == [(13, 4096, 0)]
    val, _ = _check_consistency(str(out), 'val')
    assert _segments_by_cat(val, 'P0003.png') == [(12, 192, 0), (13, 4096 - 192, 0)]
    sar = tifffile.imread(out / 'sar/train/P0002.tif')
    np.testing.assert_array_equal(sar, tifffile.imread(ubc_src / 'train/sar/P0002.tif'))
    rgb = cv2.imread(str(out / 'optical/train/P0001.png'))[..., ::-1]
    np.testing.assert_array_equal(rgb, tifffile.imread(ubc_src / 'train/rgb/P0001.tif'))
    both = np.stack([tifffile.imread(ubc_src / f'train/sar/{n}.tif') for n in ('P0001', 'P0002')])
    stats = _json(out / 'modality_stats.json')
    assert stats['sar']['mean'][0] == pytest.approx(float(both.astype(np.float64).mean()), abs=1e-4)
    assert 'p99' in stats['sar'] and 'p99' not in stats['optical']


def test_ubcv2_bad_inputs(ubc_src, tmp_path):
    coco = _json(ubc_src / 'annotations/roof_fine_val.json')
    coco['categories'][3]['name'] = 'dome'
    with open(ubc_src / 'annotations/roof_fine_val.json', 'w') as f:
        json.dump(coco, f)
    with pytest.raises(ConversionError, match=r"roof_fine_val\.json: category 'dome' \(id 103, "):
        _ubc(ubc_src, tmp_path / 'o1')
    assert _no_json(tmp_path / 'o1', 'val')
    tifffile.imwrite(ubc_src / 'train/sar/P0002.tif', np.zeros((60, 64), np.float32))
    with pytest.raises(ConversionError, match=r'sar/P0002\.tif is 60x64 but .* says 64x64'):
        _ubc(ubc_src, tmp_path / 'o2', '--splits', 'train')
    assert _no_json(tmp_path / 'o2', 'train')
    os.remove(ubc_src / 'train/rgb/P0001.tif')
    with pytest.raises(ConversionError, match=r'missing input file: .*rgb/P0001\.tif'):
        _ubc(ubc_src, tmp_path / 'o3', '--splits', 'train')
    with pytest.raises(ConversionError, match='missing annotation file'):
        _ubc(ubc_src, tmp_path / 'o4', '--splits', 'test')


def test_ubcv2_cli_with_workers(ubc_src, tmp_path):
    out = tmp_path / 'cli'
    proc = subprocess.run([sys.executable, osp.join(TOOLS, 'ubcv2.py'), '--src', str(ubc_src),
                           '--out', str(out), '--workers', '2'], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert 'train 2 images, val 1 images' in proc.stdout
    assert len(_json(out / 'annotations/panoptic_train.json')['annotations']) == 2
    os.remove(ubc_src / 'val/sar/P0003.tif')
    proc = subprocess.run([sys.executable, osp.join(TOOLS, 'ubcv2.py'), '--src', str(ubc_src),
                           '--out', str(out), '--workers', '2'], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode == 1 and 'error: missing input file' in proc.stderr
    assert 'P0003.tif' in proc.stderr and _no_json(out, 'val')


# ----------------------------------------------------------------------------- VALID
def _poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


@pytest.fixture
def valid_src(tmp_path):
    src = tmp_path / 'valid'
    rng = np.random.default_rng(2)
    tree = np.zeros((128, 128), np.uint8)
    tree[64:96, 64:96] = 1
    tree_rle = mask_utils.encode(np.asfortranarray(tree))
    tree_rle['counts'] = tree_rle['counts'].decode()
    for i, rel in enumerate(('A/20m/0001', 'A/50m/0001', 'B/20m/0002')):
        img = src / 'images' / f'{rel}.png'
        img.parent.mkdir(parents=True)
        cv2.imwrite(str(img), rng.integers(0, 255, (128, 128, 3), dtype=np.uint8))
        depth = src / 'depth' / f'{rel}.png'
        depth.parent.mkdir(parents=True)
        cv2.imwrite(str(depth), np.full((128, 128), 1000 * (i + 1), np.uint16))
        segments = [
            dict(id=1, category_id=3, segmentation=_poly(0, 0, 64, 128)),  # road, left half
            dict(id=2, category_name='road', segmentation=_poly(64, 0, 128, 32)),  # road again
            dict(id=3, category_id=1, category_name='tree', segmentation=tree_rle),
            dict(id=4, category_id=13, hbbox=[0, 0, 8, 8], segmentation=_poly(0, 0, 16, 16)),
            dict(id=5, category_id=13, segmentation=_poly(32, 32, 48, 40)),
        ]
        with open(img.with_suffix('.json'), 'w') as f:
            json.dump(dict(segments=segments) if i else segments, f)
    return src


def _valid(src, out, *extra):
    return valid.main(['--src', str(src), '--out', str(out), '--workers', '1', '--size', '64',
                       '--depth-scale', '0.01', *extra])


def test_valid_split_resize_and_categories(valid_src, tmp_path):
    split_file = tmp_path / 'split.json'
    split_file.write_text(json.dumps(dict(train=['A/20m/0001.png', 'B/20m/0002.png'],
                                          val=['A/50m/0001.png'], test=[])))
    out = tmp_path / 'out'
    assert _valid(valid_src, out, '--split-file', str(split_file)) == dict(train=2, val=1, test=0)
    pan, ins = _check_consistency(str(out), 'train')
    _check_consistency(str(out), 'val')
    cats = pan['categories']
    assert len(cats) == 30 and sum(c['isthing'] for c in cats) == 17
    assert [c['name'] for c in cats] == list(VALIDDataset.METAINFO['classes'])
    ids = {c['name']: c['id'] for c in cats}
    assert ids['tree'] == 1 and ids['small vehicle'] == 3 and ids['plant'] == 18
    assert ids['road'] == 19 and ids['harbor'] == 30
    assert sorted(i['file_name'] for i in pan['images']) == ['A_20m_0001.png', 'B_20m_0002.png']
    # 64x64 after resizing: road = left half + top-right strip minus the vehicle over it (8x8)
    assert _segments_by_cat(pan, 'A_20m_0001.png') == [
        (1, 256, 0), (3, 32, 0), (3, 64, 0), (19, 32 * 64 + 32 * 16 - 64 - 32, 0)]
    assert len(ins['annotations']) == 2 * 3
    depth = tifffile.imread(out / 'depth/train/B_20m_0002.tif')
    assert depth.dtype == np.float32 and depth.shape == (64, 64)
    np.testing.assert_allclose(depth, 30.0)
    stats = _json(out / 'modality_stats.json')
    assert stats['depth']['mean'] == [20.0] and stats['depth']['std'] == [10.0]
    assert cv2.imread(str(out / 'optical/val/A_50m_0001.png')).shape == (64, 64, 3)

    seeded = tmp_path / 'seeded'
    assert _valid(valid_src, seeded, '--split-sizes', '1', '1', '1',
                  '--stuff-classes', 'road') == dict(train=1, val=1, test=1)
    cats = _json(seeded / 'annotations/panoptic_test.json')['categories']
    assert sum(c['isthing'] for c in cats) == 29 and cats[-1]['name'] == 'road'


def test_valid_bad_inputs(valid_src, tmp_path):
    ann = valid_src / 'images/A/50m/0001.json'
    original = ann.read_text()
    data = _json(ann)
    data['segments'][2]['category_name'] = 'plane'
    ann.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=r"0001\.json segment 3: category_name 'plane' "
                       r"does not match category_id 1 \('tree'\)"):
        _valid(valid_src, tmp_path / 'o1', '--split-sizes', '0', '3', '0')
    assert _no_json(tmp_path / 'o1', 'val')
    data['segments'][2] = dict(category_name='spaceship', segmentation=[])
    ann.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match="'spaceship' is not one of"):
        _valid(valid_src, tmp_path / 'o2', '--split-sizes', '0', '3', '0')
    ann.write_text(original)
    cv2.imwrite(str(valid_src / 'depth/B/20m/0002.png'), np.zeros((100, 128), np.uint16))
    with pytest.raises(ConversionError, match=r'depth .*0002\.png is 100x128 but image'):
        _valid(valid_src, tmp_path / 'o3', '--split-sizes', '3', '0', '0')
    assert _no_json(tmp_path / 'o3', 'train')


# ----------------------------------------------------------------------------- loading
@pytest.mark.parametrize('name', ['semcity', 'ubcv2', 'valid'])
def test_converted_sample_loads(name, semcity_src, ubc_src, valid_src, tmp_path):
    out = tmp_path / name
    if name == 'semcity':
        _semcity(semcity_src, out)
        dataset_cls, aux, aux_ext, size, labels = SemCityToulouseDataset, 'nir', '.png', 128, [
            0, 1, 4, 255]  # building (incl. crowd), impervious, car, void
    elif name == 'ubcv2':
        _ubc(ubc_src, out)
        dataset_cls, aux, aux_ext, size, labels = UBCV2Dataset, 'sar', '.tif', 64, [0, 1, 12]
    else:
        _valid(valid_src, out, '--split-sizes', '1', '0', '0')
        dataset_cls, aux, aux_ext, size, labels = VALIDDataset, 'depth', '.tif', 64, [0, 2, 18, 255]
    dataset = dataset_cls(
        data_root=str(out), ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='optical/train/', seg='annotations/panoptic_train/'),
        modalities=dict(optical='optical/train/', **{aux: f'{aux}/train/'}),
        modality_suffixes=dict(optical='.png', **{aux: aux_ext}),
        pipeline=[LoadMultiModalImages(modalities=dict(optical=dict(channels=3),
                                                       **{aux: dict(channels=1)})),
                  LoadPanopticAnnotations(with_bbox=True, with_mask=True, with_seg=True)])
    sample = dataset[0]
    assert sample['img'].shape == (size, size, 4) and sample['modality_channels'] == (3, 1)
    # things without crowd regions: SemCity instances 5, 9, 7; UBCV2 two roofs; VALID 3
    assert len(sample['gt_masks']) == len(sample['gt_bboxes']) == (2 if name == 'ubcv2' else 3)
    assert sample['gt_seg_map'].shape == (size, size)
    assert np.unique(sample['gt_seg_map']).tolist() == labels


# ----------------------------------------------------------------------------- configs
# paper sec. IV-A/IV-C: train images per dataset (SemCity 1404 patches, UBCV2 4008, VALID 3345),
# 300 epochs at batch 4 -> ceil(train / 4) x 300 iterations
@pytest.mark.parametrize('name, dataset_cls, aux, train_images', [
    ('semcity-toulouse-128x128', SemCityToulouseDataset, 'nir', 1404),
    ('ubcv2-512x512', UBCV2Dataset, 'sar', 4008),
    ('valid-512x512', VALIDDataset, 'depth', 3345),
])
def test_dataset_configs_match_metainfo(name, dataset_cls, aux, train_images):
    iters = math.ceil(train_images / 4) * 300
    from mmengine.config import Config
    meta = dataset_cls.METAINFO
    for folder, model in (('pmtseg', 'pmtseg'), ('baselines', 'mask2former-ef')):
        cfg = Config.fromfile(osp.join(REPO, 'configs', folder, f'{model}_r50_1xb4-300e_{name}.py'))
        assert tuple(cfg.class_names) == meta['classes']
        assert cfg.model.panoptic_head.num_things_classes == len(meta['thing_classes'])
        assert cfg.model.panoptic_head.num_stuff_classes == len(meta['stuff_classes'])
        assert cfg.train_cfg.max_iters == iters and cfg.train_dataloader.batch_size == 4
        assert cfg.train_dataloader.dataset.type == dataset_cls.__name__
        assert list(cfg.train_dataloader.dataset.modalities) == ['optical', aux]
        assert cfg.optim_wrapper.optimizer.lr == 1e-4
        assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
