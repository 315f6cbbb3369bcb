"""VALID converter on fixtures in the release layout: a separate annotation folder of JSONs
matched by ``file_name``, segments under ``"detection"``, ``no-data`` (id 0) segments, depth
encodings and split lists (aitlas-style CSVs, one CSV with a split column, JSON)."""
import json
import re

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest
import tifffile
from panopticapi.utils import rgb2id
from test_converters import _check_consistency, _json, _no_json, _segments_by_cat, valid

ConversionError = valid.ConversionError
S = 64  # image side
IMAGES = ('Airport/20m/0001.png', 'Airport/50m/0002.png', 'City/100m/0003.png')


def _poly(x0, y0, x1, y1):
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _rle(x0, y0, x1, y1):
    mask = np.zeros((S, S), np.uint8)
    mask[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle['counts'] = rle['counts'].decode()
    return rle


def _detection(k):
    """Road left half, a tree (RLE), a small vehicle on the road, a no-data strip on top."""
    return [
        dict(id=1, category_id=3, category_name='road', segmentation=_poly(0, 0, 32, 64),
             hbbox=[0, 0, 32, 64], obbox=[0, 0, 32, 0, 32, 64, 0, 64]),
        dict(id=2, category_id=1, category_name='tree', segmentation=_rle(40, 40, 40 + 8 + k, 56),
             hbbox=[40, 40, 8 + k, 16], obbox=[]),
        dict(id=3, category_id=13, category_name='small vehicle', segmentation=_poly(8, 8, 16, 24),
             hbbox=[8, 8, 8, 16], obbox=[]),
        dict(id=4, category_id=0, category_name='no-data', segmentation=_poly(0, 0, 64, 4),
             hbbox=[0, 0, 64, 4], obbox=[]),
    ]


@pytest.fixture
def release(tmp_path):
    """images/<scene>/<altitude>/<img>.png, annotations/<any name>.json, depth in millimetres."""
    src = tmp_path / 'VALID'
    rng = np.random.default_rng(3)
    (src / 'annotations').mkdir(parents=True)
    for k, rel in enumerate(IMAGES):
        img = src / 'images' / rel
        img.parent.mkdir(parents=True)
        cv2.imwrite(str(img), rng.integers(0, 255, (S, S, 3), dtype=np.uint8))
        depth = src / 'depth' / rel
        depth.parent.mkdir(parents=True)
        cv2.imwrite(str(depth), np.full((S, S), 20000 * (k + 1), np.uint16))  # 20, 40, 60 m
        with open(src / 'annotations' / f'{900 - k}_any_name.json', 'w') as f:
            json.dump(dict(id=k, file_name=f'images/{rel}', detection=_detection(k)), f)
    with open(src / 'annotations' / 'orphan.json', 'w') as f:  # its image is not in this copy
        json.dump(dict(id=99, file_name='images/Gone/20m/0009.png', detection=[]), f)
    for split, rels in (('train', IMAGES[:2]), ('val', IMAGES[2:]), ('test', ())):
        lines = ['scene,altitude,image'] + [','.join(r.split('/')) for r in rels]
        (src / f'{split}.csv').write_text('\n'.join(lines) + '\n')
    return src


def _run(src, out, *extra):
    return valid.main(['--src', str(src), '--out', str(out), '--workers', '1', '--size', '0',
                       '--ann-dir', 'annotations', '--depth-scale', '0.001', *extra])


def _splits(src):
    return ['--split-file'] + [f'{s}={src}/{s}.csv' for s in ('train', 'val', 'test')]


def test_release_layout_detection_key_and_no_data(release, tmp_path, capsys):
    out = tmp_path / 'out'
    assert _run(release, out, *_splits(release)) == dict(train=2, val=1, test=0)
    assert '1 JSON(s) in' in capsys.readouterr().out  # the orphan is reported, not converted
    pan, ins = _check_consistency(str(out), 'train')
    _check_consistency(str(out), 'val')
    ids = {c['name']: c['id'] for c in pan['categories']}
    assert (ids['tree'], ids['small vehicle'], ids['road']) == (1, 3, 19)
    # road 32x64 minus the vehicle (8x16) minus the no-data strip (32x4); tree 8+k wide
    assert _segments_by_cat(pan, 'Airport_20m_0001.png') == [
        (1, 8 * 16, 0), (3, 8 * 16, 0), (19, 32 * 64 - 128 - 128, 0)]
    assert _segments_by_cat(pan, 'Airport_50m_0002.png')[0] == (1, 9 * 16, 0)
    ids_map = rgb2id(cv2.imread(str(out / 'annotations/panoptic_train/Airport_20m_0001.png'))
                     [..., ::-1])
    assert (ids_map[:4] == 0).all() and (ids_map == 0).sum() == 64 * 4 + 32 * 60 - 8 * 16
    assert len(ins['annotations']) == 4  # tree + vehicle per image
    depth = tifffile.imread(out / 'depth/val/City_100m_0003.tif')
    assert depth.dtype == np.float32 and depth.shape == (S, S)
    np.testing.assert_allclose(depth, 60.0)
    assert _json(out / 'modality_stats.json')['depth']['mean'] == [30.0]


def test_no_data_and_category_errors(release, tmp_path):
    ann = release / 'annotations/900_any_name.json'
    data = _json(ann)
    data['detection'][3] = dict(id=4, category_name='No-Data', segmentation=_poly(0, 0, 64, 4))
    ann.write_text(json.dumps(data))  # no-data by name only: still void
    out = tmp_path / 'ok'
    _run(release, out, '--split-sizes', '1', '0', '0')
    pan = _json(out / 'annotations/panoptic_train.json')  # the strip is void, not road
    assert _segments_by_cat(pan, 'Airport_20m_0001.png') == [
        (1, 8 * 16, 0), (3, 8 * 16, 0), (19, 32 * 64 - 128 - 128, 0)]
    data['detection'][3] = dict(id=4, category_id=0, category_name='tree',
                                segmentation=_poly(0, 0, 64, 4))
    ann.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=r"900_any_name\.json segment 4: category_name "
                       r"'tree' does not match category_id 0 \('no-data'\)"):
        _run(release, tmp_path / 'o1', '--split-sizes', '1', '0', '0')
    assert _no_json(tmp_path / 'o1', 'train')
    data['detection'][3] = dict(id=4, category_id=31, segmentation=[])
    ann.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=r'category_id 31 is not a VALID category '
                       r'\(0 = no-data, 1\.\.30\)'):
        _run(release, tmp_path / 'o2', '--split-sizes', '1', '0', '0')
    ann.write_text(json.dumps(dict(file_name='images/Airport/20m/0001.png', objects={})))
    with pytest.raises(ConversionError, match='the segment list is a dict'):
        _run(release, tmp_path / 'o3', '--split-sizes', '1', '0', '0')


def test_ann_dir_errors(release, tmp_path):
    extra = tmp_path / 'extra.json'
    (release / 'annotations/orphan.json').write_text(
        json.dumps(dict(file_name='images/City/100m/0003.png', detection=[])))
    with pytest.raises(ConversionError, match=r"898_any_name\.json and .*orphan\.json both "
                       r"annotate 'images/City/100m/0003\.png'"):
        _run(release, tmp_path / 'o1')
    (release / 'annotations/orphan.json').write_text(json.dumps(dict(id=5, detection=[])))
    with pytest.raises(ConversionError, match=r'orphan\.json: no "file_name" string'):
        _run(release, tmp_path / 'o2')
    (release / 'annotations/orphan.json').unlink()
    (release / 'annotations/899_any_name.json').rename(extra)
    with pytest.raises(ConversionError, match=r"1 image\(s\) have no JSON in .*annotations whose "
                       r"file_name names them, e\.g\. \['images/Airport/50m/0002\.png'\]"):
        _run(release, tmp_path / 'o3')
    with pytest.raises(ConversionError, match='is not a folder'):
        _run(release, tmp_path / 'o4', '--ann-dir', 'nowhere')


def test_depth_encodings(release, tmp_path, capsys):
    for k, rel in enumerate(IMAGES):  # disparity in pixels, float32 TIFF
        path = (release / 'disparity' / rel).with_suffix('.tif')
        path.parent.mkdir(parents=True, exist_ok=True)
        disparity = np.full((S, S), 2.0 * (k + 1), np.float32)
        disparity[:, :8] = 1.0
        tifffile.imwrite(path, disparity)
    common = ['--depth-template', '{src}/disparity/{rel_dir}/{stem}.tif', '--depth-scale', '1',
              '--depth-encoding', 'disparity', '--baseline', '0.5', '--split-sizes', '1', '0', '0']
    out = tmp_path / 'focal'
    _run(release, out, *common, '--focal-length', '200')
    depth = tifffile.imread(out / 'depth/train/Airport_50m_0002.tif')
    np.testing.assert_allclose(depth[:, 8:], 0.5 * 200 / 4.0)  # 25 m
    np.testing.assert_allclose(depth[:, :8], 100.0)
    out = tmp_path / 'hfov'  # focal = 64 / (2 tan 45 deg) = 32 px
    _run(release, out, *common, '--hfov', '90', '--depth-range', '0.5', '100')
    np.testing.assert_allclose(tifffile.imread(out / 'depth/train/City_100m_0003.tif')[0, 8:],
                               0.5 * 32 / 6.0, rtol=1e-6)
    # implausible: a millimetre map taken as metres, a disparity map with a zero
    with pytest.raises(ConversionError, match=r'000\d\.png: median depth [246]e\+04 m .* '
                       r'--depth-encoding metres --depth-scale 1 is outside the plausible range '
                       r'1-1000 m \(--depth-range\)'):
        _run(release, tmp_path / 'o1', '--split-sizes', '1', '0', '0', '--depth-scale', '1')
    assert _no_json(tmp_path / 'o1', 'train')
    bad = tifffile.imread(release / 'disparity/Airport/20m/0001.tif')
    bad[5, 9] = 0
    tifffile.imwrite(release / 'disparity/Airport/20m/0001.tif', bad)
    with pytest.raises(ConversionError, match=r'0001\.tif: 1 pixel\(s\) have a disparity <= 0 or '
                       r'NaN \(first at x=9, y=5: 0\)'):
        _run(release, tmp_path / 'o2', *common, '--focal-length', '200')
    for args, message in ((['--depth-encoding', 'disparity', '--focal-length', '9'],
                           '--depth-encoding disparity needs --baseline'),
                          (['--depth-encoding', 'disparity', '--baseline', '1'],
                           'needs exactly one of --focal-length'),
                          (['--baseline', '1'], '--baseline: only for --depth-encoding'),
                          (['--depth-encoding', 'disparity', '--baseline', '1', '--hfov', '180'],
                           r'--hfov must be in \(0, 180\)'),
                          (['--depth-range', '5', '2'], '--depth-range needs 0 <= MIN < MAX')):
        with pytest.raises(SystemExit):
            _run(release, tmp_path / 'o3', *args)
        assert re.search(message, capsys.readouterr().err), message


def test_split_files(release, tmp_path):
    one = tmp_path / 'splits.csv'  # one CSV with a split column, file_name style paths
    one.write_text('file_name,split\nimages/Airport/20m/0001.png,train\n'
                   'images/City/100m/0003.png,test\nAirport/50m/0002,val\n')
    out = tmp_path / 'one'
    assert _run(release, out, '--split-file', str(one)) == dict(train=1, val=1, test=1)
    assert [i['file_name'] for i in _json(out / 'annotations/panoptic_test.json')['images']] == [
        'City_100m_0003.png']
    as_json = tmp_path / 'splits.json'
    as_json.write_text(json.dumps(dict(train=list(IMAGES[1:]), val=[IMAGES[0]])))
    assert _run(release, tmp_path / 'json', '--split-file', str(as_json)) == dict(
        train=2, val=1, test=0)
    (tmp_path / 'val.txt').write_text('images/City/100m/0003.png\n\n')
    (tmp_path / 'train.json').write_text(json.dumps([IMAGES[0]]))
    assert _run(release, tmp_path / 'lists', '--split-file', f'train={tmp_path}/train.json',
                f'val={tmp_path}/val.txt') == dict(train=1, val=1, test=0)

    def fails(match, *spec):
        with pytest.raises(ConversionError, match=match):
            _run(release, tmp_path / 'bad', '--split-file', *spec)

    (tmp_path / 'x.csv').write_text('scene,altitude,image\nAirport,20m,0001.png\nNope,1m,1.png\n')
    fails(r"train lists 1 image\(s\) not found under the image root: \['Nope/1m/1\.png'\]",
          f'train={tmp_path}/x.csv')
    fails(r"\['Airport/20m/0001\.png'\] are in more than one split",
          f'train={tmp_path}/train.json', f'val={release}/train.csv')
    (tmp_path / 'y.csv').write_text('Airport/20m/0001.png,oops\n')
    fails(r'y\.csv row 1: .* has 2 columns', f'train={tmp_path}/y.csv')
    fails(r"unknown split name\(s\) \['training'\]", f'training={tmp_path}/train.json')
    (tmp_path / 'z.csv').write_text('path\nimages/City/100m/0003.png\n')
    fails(r'a single CSV needs a header with a "split" column', str(tmp_path / 'z.csv'))
    fails(r"expected SPLIT=FILE", f'train={tmp_path}/train.json', 'val.txt')
    (tmp_path / 'w.json').write_text(json.dumps(dict(train='Airport/20m/0001.png')))
    fails(r"train must be a list of image paths, got 'Airport", str(tmp_path / 'w.json'))


def test_inspect_depth_writes_nothing(release, tmp_path, capsys):
    out = tmp_path / 'out'
    assert _run(release, out, '--inspect-depth', '2') == dict(inspected=2)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f'Airport/20m/0001.png: {release}/depth/Airport/20m/0001.png: stored min 20000, median '
        '20000, max 20000 (gray) -> depth min 20, median 20, max 20 m',
        f'Airport/50m/0002.png: {release}/depth/Airport/50m/0002.png: stored min 40000, median '
        '40000, max 40000 (gray) -> depth min 40, median 40, max 40 m']
    assert not out.exists()
    _run(release, out, '--inspect-depth', '1', '--depth-scale', '1')
    assert 'is outside the plausible range 1-1000 m' in capsys.readouterr().out


def _gradient():
    """Depth in metres varying along both axes (so a flipped or resampled map shows)."""
    y, x = np.mgrid[0:S, 0:S]
    return (20 + 0.1 * y + 0.01 * x).astype(np.float32)


def _write_pfm(path, array):
    """One-band little-endian PFM (scale -1), rows bottom-up as the format stores them."""
    with open(path, 'wb') as f:
        f.write(b'Pf\n%d %d\n-1.0\n' % (array.shape[1], array.shape[0]))
        f.write(np.flipud(array).astype('<f4').tobytes())


def _outputs(out):
    names = {'Airport/20m/0001.png': 'train/Airport_20m_0001', 'Airport/50m/0002.png':
             'train/Airport_50m_0002', 'City/100m/0003.png': 'val/City_100m_0003'}
    return {rel: tifffile.imread(out / 'depth' / (name + '.tif')) for rel, name in names.items()}


@pytest.mark.parametrize('kind', ['pfm', 'npy', 'rgb24'])
def test_depth_readers(kind, release, tmp_path):
    depth = _gradient()
    code = np.round(depth * 1000).astype(np.int64)  # rgb24: millimetres in R + 256 G + 65536 B
    for rel in IMAGES:
        path = release / kind / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == 'pfm':
            _write_pfm(path.with_suffix('.pfm'), depth)
        elif kind == 'npy':
            np.save(path.with_suffix('.npy'), depth)  # 2-D
        else:
            rgb = np.stack([code & 255, (code >> 8) & 255, code >> 16], -1).astype(np.uint8)
            cv2.imwrite(str(path), rgb[..., ::-1])  # cv2 writes BGR
    suffix = {'pfm': '.pfm', 'npy': '.npy', 'rgb24': '.png'}[kind]
    extra = ['--depth-template', f'{{src}}/{kind}/{{rel_dir}}/{{stem}}{suffix}']
    if kind == 'rgb24':  # stored value c / (256^3 - 1); times this scale: c / 1000 metres
        extra += ['--depth-format', 'rgb24', '--depth-scale', str((256**3 - 1) / 1000)]
    else:
        extra += ['--depth-scale', '1']
    out = tmp_path / 'out'
    _run(release, out, *_splits(release), *extra)
    expected = code / 1000 if kind == 'rgb24' else depth
    for rel, written in _outputs(out).items():
        assert written.dtype == np.float32, rel
        np.testing.assert_allclose(written, expected, rtol=1e-6, err_msg=rel)
    if kind == 'rgb24':  # a one-band float map cannot be rgb24
        np.save(release / '0001.npy', depth)
        with pytest.raises(ConversionError, match=r'0001\.npy: --depth-format rgb24 needs 8-bit '
                           r'RGB, got 1 band\(s\) of float32'):
            valid.read_depth(str(release / '0001.npy'), 'rgb24', 1.0)


def test_depth_interp_negative_depth_and_pfm_header(release, tmp_path):
    depth = _gradient()
    for rel in IMAGES:
        path = (release / 'npy' / rel).with_suffix('.npy')
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, depth)
    common = ['--depth-template', '{src}/npy/{rel_dir}/{stem}.npy', '--depth-scale', '1',
              '--size', '32'] + _splits(release)
    # 64 -> 32 px: 'area' averages each 2x2 block, 'nearest' takes its top-left pixel
    i, j = np.mgrid[0:32, 0:32]
    for interp, expected in (('area', 20 + 0.1 * (2 * i + 0.5) + 0.01 * (2 * j + 0.5)),
                             ('nearest', 20 + 0.1 * (2 * i) + 0.01 * (2 * j))):
        out = tmp_path / interp
        valid.main(['--src', str(release), '--out', str(out), '--workers', '1', '--ann-dir',
                    'annotations', '--depth-interp', interp] + common)
        for rel, written in _outputs(out).items():
            assert written.shape == (32, 32)
            np.testing.assert_allclose(written, expected, rtol=1e-5, err_msg=f'{interp} {rel}')
    bad = depth.copy()
    bad[2, 3] = -1.0
    np.save((release / 'npy' / IMAGES[0]).with_suffix('.npy'), bad)
    with pytest.raises(ConversionError, match=r'Airport/20m/0001\.npy: 1 pixel\(s\) have a '
                       r'negative or non-finite depth \(first at x=3, y=2: -1\) with '
                       r'--depth-encoding metres --depth-scale 1'):
        _run(release, tmp_path / 'neg', '--depth-template', '{src}/npy/{rel_dir}/{stem}.npy',
             '--depth-scale', '1', *_splits(release))
    not_pfm = tmp_path / 'x.pfm'
    not_pfm.write_bytes(b'P6\n2 2\n255\n' + bytes(12))
    with pytest.raises(ConversionError, match=r'x\.pfm: not a PFM file'):
        valid.read_pfm(str(not_pfm))
    short = tmp_path / 'short.pfm'
    short.write_bytes(b'Pf\n4 4\n-1.0\n' + np.zeros(10, '<f4').tobytes())
    with pytest.raises(ConversionError, match=r'short\.pfm: PFM holds 10 values, expected 4x4x1'):
        valid.read_pfm(str(short))


def test_image_glob_and_image_root(release, tmp_path):
    # only the 20 m and 50 m views of the airport
    out = tmp_path / 'glob'
    counts = _run(release, out, '--image-glob', 'Airport/*/*.png', '--split-sizes', '1', '1', '0')
    assert counts == dict(train=1, val=1, test=0)
    written = sorted(p.name for p in (out / 'optical').rglob('*.png'))
    assert written == ['Airport_20m_0001.png', 'Airport_50m_0002.png']
    # the images under another root folder name, which the JSONs' file_name then start with
    (release / 'images').rename(release / 'rgb')
    for path in (release / 'annotations').glob('*.json'):
        data = json.loads(path.read_text())
        data['file_name'] = data['file_name'].replace('images/', 'rgb/', 1)
        path.write_text(json.dumps(data))
    out = tmp_path / 'root'
    assert _run(release, out, '--image-root', 'rgb', *_splits(release)) == dict(train=2, val=1,
                                                                              test=0)
    assert (out / 'optical' / 'val' / 'City_100m_0003.png').is_file()
