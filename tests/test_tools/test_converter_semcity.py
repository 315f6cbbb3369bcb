"""SemCity Toulouse converter on the released variants: colour labels ``TLS_GT_XX.tif`` without
annotator suffix, ``TLS_indMap_noGeo`` index maps, the official 8-bit RGB / NIRRG composites
(``--source composites``), ``--bands`` and the band check against the composites."""
import re

import cv2
import numpy as np
import pytest
import tifffile
from test_converters import _check_consistency, _json, _no_json, semcity_toulouse

from pmtseg_mm.datasets.semcity_toulouse import SEMCITY_RAW_CLASSES

ConversionError = semcity_toulouse.ConversionError
T = 128  # tile side; --patch-size 64 gives 2 x 2 patches
TILES = ('03', '04')


def _labels():
    lab = np.ones((T, T), np.uint8)  # impervious
    lab[:, 64:] = 3  # pervious
    lab[10:30, 10:30] = 2  # building = instance 1
    lab[40:44, 70:80] = 5  # car
    lab[100:104] = 0  # void
    inst = np.zeros((T, T), np.uint16)
    inst[10:30, 10:30] = 1
    return lab, inst


def _composite(bands):
    """An official-looking composite: the converter's stretch, then a gamma (monotonic)."""
    stretched = semcity_toulouse._stretch(np.moveaxis(bands, 0, -1)).astype(np.float64)
    return np.rint(255 * (stretched / 255) ** 0.8).astype(np.uint8)


@pytest.fixture
def release(tmp_path):
    src = tmp_path / 'SemCity-Toulouse-bench'
    rng = np.random.default_rng(5)
    lab, inst = _labels()
    colours = np.array([c for _, c in SEMCITY_RAW_CLASSES], np.uint8)
    for d in ('img_multispec_05/TLS_BDSD_M', 'img_multispec_05/TLS_BDSD_RGB_noGeo',
              'img_multispec_05/TLS_BDSD_NIRRG', 'semantic_05/TLS_GT',
              'semantic_05/TLS_indMap_noGeo', 'instances_building_05/TLS_instances_building_indMap'):
        (src / d).mkdir(parents=True)
    for tile in TILES:
        bands = rng.integers(100, 4000, (8, T, T), dtype=np.uint16)
        ms = src / 'img_multispec_05'
        tifffile.imwrite(ms / f'TLS_BDSD_M/TLS_BDSD_M_{tile}.tif', bands, planarconfig='separate')
        tifffile.imwrite(ms / f'TLS_BDSD_RGB_noGeo/TLS_BDSD_RGB_noGeo_{tile}.tif',
                         _composite(bands[[4, 2, 1]]))
        tifffile.imwrite(ms / f'TLS_BDSD_NIRRG/TLS_BDSD_NIRRG_{tile}.tif',
                         _composite(bands[[6, 4, 2]]))
        tifffile.imwrite(src / f'semantic_05/TLS_GT/TLS_GT_{tile}.tif', colours[lab])
        tifffile.imwrite(src / f'semantic_05/TLS_indMap_noGeo/TLS_indMap_noGeo_{tile}_2.tif', lab)
        tifffile.imwrite(src / 'instances_building_05/TLS_instances_building_indMap/'
                         f'TLS_instances_building_indMap_{tile}.tif', inst)
    return src


def _run(src, out, *extra):
    return semcity_toulouse.main(['--src', str(src), '--out', str(out), '--workers', '1',
                                  '--patch-size', '64', '--tiles-train', '04', '--tiles-val', '03',
                                  *extra])


def _infos(out, split='train'):
    pan = _json(out / f'annotations/panoptic_{split}.json')
    return [a['segments_info'] for a in pan['annotations']]


def test_labels_without_suffix_and_nogeo_index_maps(release, tmp_path, capsys):
    colour, index = tmp_path / 'colour', tmp_path / 'index'
    assert _run(release, colour, '--label-format', 'colour') == dict(train=4, val=4)
    out = capsys.readouterr().out
    assert 'TLS_BDSD_RGB_noGeo_04.tif R matches band 4 (red, rank correlation 1.000)' in out
    assert 'TLS_BDSD_NIRRG_03.tif NIR matches band 6 (NIR1' in out
    _check_consistency(str(colour), 'train')
    assert _run(release, index, '--annotator', '2') == dict(train=4, val=4)
    assert _infos(colour) == _infos(index) and _infos(colour, 'val') == _infos(index, 'val')
    first = _infos(colour)[0]  # patch r00_c00: building instance + impervious
    assert sorted((s['category_id'], s['area']) for s in first) == [(1, 400), (2, 64 * 64 - 400)]
    _run(release, tmp_path / 'none', '--label-format', 'colour', '--annotator', 'none')
    assert _infos(tmp_path / 'none') == _infos(colour)
    with pytest.raises(ConversionError, match=r"tile 04: no colour label map for --annotator 2; "
                       r"found annotator\(s\) \['none'\]: \['.*TLS_GT_04\.tif'\]"):
        _run(release, tmp_path / 'o1', '--label-format', 'colour', '--annotator', '2')
    with pytest.raises(ConversionError, match=r"tile 04: no index label map found, looked for "
                       r"\['.*TLS_indMap/TLS_indMap_04\[_<annotator>\]\.tif'"):
        _run(release, tmp_path / 'o2', '--tiles-train', '04', '--annotator', 'first',
             '--src', str(tmp_path))


def test_composites_and_bands(release, tmp_path, capsys):
    comp = tmp_path / 'comp'
    assert _run(release, comp, '--source', 'composites') == dict(train=4, val=4)
    rgb = tifffile.imread(release / 'img_multispec_05/TLS_BDSD_RGB_noGeo/TLS_BDSD_RGB_noGeo_04.tif')
    nirrg = tifffile.imread(release / 'img_multispec_05/TLS_BDSD_NIRRG/TLS_BDSD_NIRRG_04.tif')
    optical = cv2.imread(str(comp / 'optical/train/TLS_04_r01_c00.png'))[..., ::-1]
    np.testing.assert_array_equal(optical, rgb[64:, :64])
    np.testing.assert_array_equal(cv2.imread(str(comp / 'nir/train/TLS_04_r00_c01.png'),
                                             cv2.IMREAD_UNCHANGED), nirrg[:64, 64:, 0])
    assert 'p1' not in _json(comp / 'modality_stats.json')['nir']
    assert 'TLS_BDSD_NIRRG_04.tif channel 1 ~ RGB R (1.000), channel 2 ~ RGB G (1.000): NIR, R, G' \
        ' order' in capsys.readouterr().out
    nirrg_path = release / 'img_multispec_05/TLS_BDSD_NIRRG/TLS_BDSD_NIRRG_03.tif'
    tifffile.imwrite(nirrg_path, tifffile.imread(nirrg_path)[..., [1, 2, 0]])  # R, G, NIR
    _run(release, tmp_path / 'rgn', '--source', 'composites')
    assert re.search(r'warning: tile 03: TLS_BDSD_NIRRG_03\.tif channel 1 ~ RGB G .* expected '
                     r'channels 1, 2 = R, G', capsys.readouterr().err)

    capsys.readouterr()
    swapped = tmp_path / 'swapped'
    _run(release, swapped, '--bands', '3', '2', '1', '7')
    err = capsys.readouterr().err
    assert re.search(r'warning: tile 04: TLS_BDSD_RGB_noGeo_04\.tif R matches band 4 \(red, rank '
                     r'correlation 1\.000\), but --bands takes band 3 for R', err)
    assert 'but --bands takes band 7 for NIR' in err and 'for G' not in err
    bands = tifffile.imread(release / 'img_multispec_05/TLS_BDSD_M/TLS_BDSD_M_04.tif')
    expected = semcity_toulouse._stretch(np.moveaxis(bands[[3, 2, 1]], 0, -1))
    np.testing.assert_array_equal(
        cv2.imread(str(swapped / 'optical/train/TLS_04_r00_c00.png'))[..., ::-1], expected[:64, :64])
    capsys.readouterr()
    _run(release, tmp_path / 'quiet', '--bands', '3', '2', '1', '7', '--no-band-check')
    assert 'warning' not in capsys.readouterr().err
    rgb_path = release / 'img_multispec_05/TLS_BDSD_RGB_noGeo/TLS_BDSD_RGB_noGeo_03.tif'
    tifffile.imwrite(rgb_path, tifffile.imread(rgb_path)[:100])
    _run(release, tmp_path / 'cropped')
    assert re.search(r'warning: tile 03: .*TLS_BDSD_RGB_noGeo_03\.tif is 100x128 but TLS_BDSD_M '
                     r'is 128x128 \(HxW\); band check against it skipped', capsys.readouterr().err)


def test_source_and_band_errors(release, tmp_path, capsys):
    with pytest.raises(ConversionError, match=r'TLS_BDSD_M_04\.tif has 8 band\(s\); --bands 4 2 1 8 '
                       r'needs band 8 \(0-indexed'):
        _run(release, tmp_path / 'o1', '--bands', '4', '2', '1', '8')
    assert _no_json(tmp_path / 'o1', 'train')
    for args, message in ((['--source', 'composites', '--bands', '4', '2', '1', '6'],
                           '--bands and --keep-16bit apply to --source bands only'),
                          (['--bands', '-1', '2', '1', '6'], '--bands are 0-indexed'),
                          (['--annotator', 'last'], "--annotator must be 'auto'")):
        with pytest.raises(SystemExit):
            _run(release, tmp_path / 'o2', *args)
        assert message in capsys.readouterr().err
    ms = release / 'img_multispec_05'
    (ms / 'TLS_BDSD_NIRRG/TLS_BDSD_NIRRG_03.tif').unlink()
    with pytest.raises(ConversionError, match=r"tile 03: missing NIRRG composite for --source "
                       r"composites, tried \['.*TLS_BDSD_NIRRG_03\.tif', "
                       r"'.*TLS_BDSD_NIRRG_noGeo_03\.tif'\]"):
        _run(release, tmp_path / 'o3', '--source', 'composites')
    tifffile.imwrite(ms / 'TLS_BDSD_NIRRG/TLS_BDSD_NIRRG_03.tif', np.zeros((T, T, 3), np.uint8))
    tifffile.imwrite(ms / 'TLS_BDSD_NIRRG/TLS_BDSD_NIRRG_04.tif', np.zeros((T, T, 3), np.uint16))
    with pytest.raises(ConversionError, match=r'TLS_BDSD_NIRRG_04\.tif: expected an 8-bit 3-band '
                       r'composite, got 3 band\(s\) of uint16'):
        _run(release, tmp_path / 'o4', '--source', 'composites')
