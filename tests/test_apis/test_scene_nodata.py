"""Nodata in whole-scene inference: a pixel is valid only where every given modality is valid;
nodata pixels are 255 / void / in no polygon, all-nodata windows are not run, the valid pixels
alone are range-checked, and --resample keeps nodata out of the interpolation.

The model is the tiny PMTSeg with ``predict_window_scores`` replaced by a stub that predicts the
thing class 0 over every pixel of every window, so an empty output cannot pass."""
import json

import numpy as np
import pytest
import rasterio
import torch
from mmengine.structures import InstanceData
from rasterio import features

from _geotiff import grid_transform, write_geotiff
from pmtseg_mm.apis.scene import SceneReader, WindowGrid, infer_scene

H, W, WINDOW, OVERLAP = 300, 260, 64, 16
NUM_CLASSES = 6  # synthetic: building, tree, car (things), road, grass, water


def stub_scores(inputs: torch.Tensor, data_samples) -> list:
    """Class 0 (a thing) wins every pixel; one full-window instance of it per window."""
    results = []
    for sample in data_samples:
        h, w = sample.img_shape
        scores = torch.zeros(NUM_CLASSES, h, w)
        scores[0] = 1.0
        results.append(dict(sem_scores=scores, ins_results=InstanceData(
            labels=torch.tensor([0]), scores=torch.tensor([0.9]),
            masks=torch.ones(1, h, w, dtype=torch.bool))))
    return results


@pytest.fixture
def stubbed(inferencer, monkeypatch):
    monkeypatch.setattr(inferencer.model, 'predict_window_scores', stub_scores)
    return inferencer


def scene(tmp_path, optical_hole=None, dsm_hole=None):
    """Optical (uint8, nodata 0 declared) and DSM (float32, nodata -9999 declared) with the given
    (y0, x0, y1, x1) regions set to their nodata values; returns paths and the nodata mask."""
    rng = np.random.RandomState(0)
    optical = rng.randint(1, 255, (3, H, W)).astype(np.uint8)
    dsm = rng.uniform(0, 10, (1, H, W)).astype(np.float32)
    nodata = np.zeros((H, W), bool)
    if optical_hole:
        y0, x0, y1, x1 = optical_hole
        optical[:, y0:y1, x0:x1] = 0
        nodata[y0:y1, x0:x1] = True
    if dsm_hole:
        y0, x0, y1, x1 = dsm_hole
        dsm[:, y0:y1, x0:x1] = -9999
        nodata[y0:y1, x0:x1] = True
    return dict(optical=write_geotiff(tmp_path / 'optical.tif', optical, nodata=0),
                depth=write_geotiff(tmp_path / 'dsm.tif', dsm, nodata=-9999)), nodata


def polygon_pixels(geojson: str) -> np.ndarray:
    with open(geojson) as f:
        feats = json.load(f)['features']
    assert feats, 'no polygon at all'
    return features.rasterize([(f['geometry'], 1) for f in feats], out_shape=(H, W),
                              transform=grid_transform()).astype(bool)


def nodata_window_reads(nodata: np.ndarray, block: int) -> int:
    """Window reads without a valid pixel: a window is read once per block it touches."""
    grid = WindowGrid(H, W, WINDOW, OVERLAP)
    return sum(nodata[y0:y1, x0:x1].all()
               for by in range(0, H, block) for bx in range(0, W, block)
               for y0, x0, y1, x1 in (grid.box(r, c) for r, c in grid.touching(
                   by, bx, min(by + block, H), min(bx + block, W))))


@pytest.mark.parametrize('holes', [
    dict(optical_hole=(0, 0, 150, 170)),
    dict(dsm_hole=(120, 60, 300, 260)),
    dict(optical_hole=(0, 0, 100, 120), dsm_hole=(200, 100, 300, 260)),
], ids=['optical', 'dsm', 'both'])
def test_nodata_is_nodata_in_every_output(stubbed, tmp_path, holes):
    paths, nodata = scene(tmp_path, **holes)
    classes = stubbed.dataset_meta['classes']
    result = infer_scene(stubbed.model, stubbed.spec, paths, str(tmp_path / 's'), classes, 3,
                         window=WINDOW, overlap=OVERLAP, block_size=128, progress=False)
    with rasterio.open(result.semantic) as f:
        semantic = f.read(1)
        assert f.nodata == 255
    with rasterio.open(result.panoptic) as f:
        panoptic = f.read(1)
    np.testing.assert_array_equal(semantic == 255, nodata)
    assert (semantic[~nodata] == 0).all()  # the stub's thing class everywhere else
    np.testing.assert_array_equal(panoptic == NUM_CLASSES, nodata)  # void exactly there
    assert (panoptic[~nodata] % 1000 == 0).all()  # class 0 instances
    # the stub's full-window instances of neighbouring windows are identical in their shared
    # region (mask IoU 1 >= join_iou 0.5), so they join: one instance over the valid region,
    # which is connected in every case here
    assert result.num_instances == 1
    np.testing.assert_array_equal(polygon_pixels(result.geojson), ~nodata)
    expected_skipped = nodata_window_reads(nodata, 128)
    assert expected_skipped > 0 and result.windows_nodata == expected_skipped


def test_nodata_option_for_files_without_one_and_checks_on_valid_pixels_only(stubbed, tmp_path):
    """A DSM without declared nodata: -9999 is read as data (and refused by the value range);
    with nodata given, the range check sees the valid pixels only."""
    import copy
    rng = np.random.RandomState(0)
    optical = write_geotiff(tmp_path / 'o.tif', rng.randint(1, 255, (3, 64, 64)).astype(np.uint8))
    dsm_data = rng.uniform(0, 10, (1, 64, 64)).astype(np.float32)
    dsm_data[:, :10] = -9999
    dsm = write_geotiff(tmp_path / 'd.tif', dsm_data)  # no nodata in the file
    spec = copy.deepcopy(stubbed.spec)
    spec.options['depth']['value_range'] = (0.0, 100.0)
    paths = dict(optical=optical, depth=dsm)
    with SceneReader(paths, spec) as reader, pytest.raises(
            ValueError, match=r"modality 'depth' raster .*d.tif in window .* has values in "
            r'\[-9999, .*outside `modalities.depth.value_range`'):
        reader.read(0, 0, 64, 64)
    for nodata, options in (({'depth': -9999}, {}), ({}, {'nodata': -9999})):
        spec_n = copy.deepcopy(spec)
        spec_n.options['depth'].update(options)
        with SceneReader(paths, spec_n, nodata=nodata) as reader:
            img, valid = reader.read(0, 0, 64, 64)
        assert not valid[:10].any() and valid[10:].all()
        # invalid pixels get the missing-modality fill (the preprocessor mean: normalised to 0)
        for name, sl in (('optical', slice(0, 3)), ('depth', slice(3, 4))):
            np.testing.assert_allclose(img[:10, :, sl], np.broadcast_to(
                spec.fill_values[name], (10, 64, sl.stop - sl.start)))
        np.testing.assert_allclose(img[10:, :, 3], dsm_data[0, 10:])
    with pytest.raises(ValueError, match=r"nodata values given for \['sar'\]"):
        SceneReader(paths, spec, nodata={'sar': 0})


def test_resample_keeps_nodata_out_of_the_interpolation(stubbed, tmp_path):
    """A DSM of 5 m with a -9999 void, shifted by half a pixel: bilinear resampling must not
    smear -9999 into valid pixels; the void stays nodata on the optical grid."""
    optical = write_geotiff(tmp_path / 'o.tif', np.full((3, 40, 80), 100, np.uint8))
    dsm = np.full((1, 40, 81), 5.0, np.float32)
    dsm[:, :, 30:50] = -9999
    path = write_geotiff(tmp_path / 'd.tif', dsm, nodata=-9999, transform=grid_transform(-0.5))
    with SceneReader(dict(optical=optical, depth=path), stubbed.spec, resample=True) as reader:
        img, valid = reader.read(0, 0, 40, 80)
    depth = img[..., 3]
    assert valid.any() and not valid.all()
    np.testing.assert_allclose(depth[valid], 5.0, atol=1e-4)  # no -9999 mixed into valid pixels
    assert not valid[:, 32:48].any() and valid[:, :28].all() and valid[:, 52:].all()


def test_geopackage_holds_the_geojson_instances(stubbed, tmp_path):
    import fiona
    paths, _ = scene(tmp_path, optical_hole=(0, 0, 100, 120))
    result = infer_scene(stubbed.model, stubbed.spec, paths, str(tmp_path / 's'),
                         stubbed.dataset_meta['classes'], 3, window=WINDOW, overlap=OVERLAP,
                         block_size=128, progress=False, geopackage=True)
    with open(result.geojson) as f:
        expected = json.load(f)['features']
    with fiona.open(result.geopackage, layer='instances') as layer:
        assert layer.crs.to_epsg() == 32631 and layer.schema['geometry'] == 'MultiPolygon'
        got = list(layer)
    assert len(got) == len(expected) == result.num_instances == 1  # joined as above
    for feature, want in zip(got, expected):
        assert dict(feature['properties']) == want['properties']
        coords = want['geometry']['coordinates']
        if want['geometry']['type'] == 'Polygon':
            coords = [coords]
        got_coords = [[[tuple(p) for p in ring] for ring in poly]
                      for poly in feature['geometry']['coordinates']]
        assert got_coords == [[[tuple(p) for p in ring] for ring in poly] for poly in coords]


def test_a_pixel_is_nodata_only_where_every_band_is():
    """As GDAL's dataset mask: an optical pixel with one band at the nodata value 0 is data."""
    from pmtseg_mm.structures import ModalityLayout
    optical = np.array([[[0, 0, 0], [0, 12, 30], [5, 5, 5]]], np.uint8)
    np.testing.assert_array_equal(ModalityLayout.nodata_pixels(optical, 0.0),
                                  [[True, False, False]])
    depth = np.array([[[np.nan], [1.0]]], np.float32)
    np.testing.assert_array_equal(ModalityLayout.nodata_pixels(depth, float('nan')),
                                  [[True, False]])
    assert not ModalityLayout.nodata_pixels(depth, None).any()
