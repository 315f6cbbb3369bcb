"""Whole-scene GeoTIFF inference: georeferenced outputs, refusal of misaligned modalities,
seamless blocks and instances joined across window borders."""
import json

import numpy as np
import pytest
import rasterio
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET

from _geotiff import ORIGIN, PIXEL, grid_transform, write_geotiff
from pmtseg_mm.apis.scene import (SceneReader, WindowGrid, WindowInstance, centre_weights,
                                  infer_scene, join_instances, suppress_duplicates,
                                  window_starts)


def make_scene(folder, height, width, seed=0, **dsm_kwargs):
    rng = np.random.RandomState(seed)
    optical = rng.randint(0, 255, (3, height, width)).astype(np.uint8)
    dsm = rng.uniform(0, 10, (1, height, width)).astype(np.float32)
    return dict(optical=write_geotiff(folder / 'optical.tif', optical),
                depth=write_geotiff(folder / 'dsm.tif', dsm, **dsm_kwargs))


def run(inferencer, paths, prefix, **kwargs):
    classes = inferencer.dataset_meta['classes']
    kwargs.setdefault('score_thr', 0.02)
    return infer_scene(inferencer.model, inferencer.spec, paths, str(prefix), classes, 3,
                       window=128, overlap=32, progress=False, **kwargs)


def test_window_grid_covers_scene_with_overlap():
    assert window_starts(700, 128, 32) == [0, 96, 192, 288, 384, 480, 572]
    assert window_starts(100, 128, 32) == [0]
    with pytest.raises(ValueError, match='overlap < size'):
        window_starts(500, 128, 128)
    weights = centre_weights(128, 128)
    assert weights[64, 64] == pytest.approx(1.0, abs=0.02) and weights[0, 0] < 0.001
    grid = WindowGrid(600, 700, 128, 32)
    covered = np.zeros((600, 700), int)
    for r in range(len(grid.ys)):
        for c in range(len(grid.xs)):
            y0, x0, y1, x1 = grid.box(r, c)
            covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1 and (covered[96:128, :] >= 2).all()


def test_scene_outputs_are_georeferenced(inferencer, tmp_path):
    """A 1500x1300 scene through the tiny network: rasters keep the optical CRS, transform and
    size; GeoJSON polygons lie in the scene."""
    height, width = 1500, 1300
    paths = make_scene(tmp_path, height, width)
    result = run(inferencer, paths, tmp_path / 'out' / 'scene', block_size=1024, batch_size=16)
    assert (result.height, result.width) == (height, width)
    assert result.windows_in_grid == 16 * 14
    assert result.windows_run >= result.windows_in_grid  # block borders re-run some windows
    with rasterio.open(paths['optical']) as src, rasterio.open(result.semantic) as sem, \
            rasterio.open(result.panoptic) as pan:
        for out in (sem, pan):
            assert out.crs == src.crs and out.transform == src.transform
            assert (out.width, out.height) == (src.width, src.height)
            assert out.profile['tiled'] and out.compression.name == 'deflate'
            assert out.block_shapes == [(256, 256)] and out.overviews(1) == [2, 4, 8]  # COG
            assert out.tags(ns='IMAGE_STRUCTURE').get('LAYOUT') == 'COG'
        semantic = sem.read(1)
        panoptic = pan.read(1)
        bounds = src.bounds
    assert sem.dtypes[0] == 'uint8' and pan.dtypes[0] == 'int32'
    assert semantic.max() < 6 and len(np.unique(semantic)) > 1
    labels = panoptic % INSTANCE_OFFSET
    stuff = semantic >= 3
    np.testing.assert_array_equal(labels[stuff & (panoptic < INSTANCE_OFFSET)],
                                  semantic[stuff & (panoptic < INSTANCE_OFFSET)])
    with open(result.geojson) as f:
        collection = json.load(f)
    assert collection['type'] == 'FeatureCollection'
    assert collection['crs']['properties']['name'] == 'EPSG:32631'
    features = collection['features']
    assert len(features) == result.num_instances > 0
    ids = set(np.unique(panoptic // INSTANCE_OFFSET)) - {0}
    assert ids <= set(range(1, result.num_instances + 1))
    for feature in features:
        props = feature['properties']
        assert props['class'] in ('building', 'tree', 'car') and 0 <= props['score'] <= 1
        assert props['area_m2'] == pytest.approx(props['area_px'] * PIXEL * PIXEL)
        polygons = feature['geometry']['coordinates']
        if feature['geometry']['type'] == 'Polygon':
            polygons = [polygons]
        xy = np.array([p for poly in polygons for ring in poly for p in ring])
        assert (xy[:, 0] >= bounds.left).all() and (xy[:, 0] <= bounds.right).all()
        assert (xy[:, 1] >= bounds.bottom).all() and (xy[:, 1] <= bounds.top).all()


def test_blocks_are_seamless(inferencer, tmp_path):
    """The semantic raster does not depend on the block size (one global window grid)."""
    paths = make_scene(tmp_path, 224, 232, seed=1)
    small = run(inferencer, paths, tmp_path / 'a', block_size=128, batch_size=8)
    whole = run(inferencer, paths, tmp_path / 'b', block_size=1024, batch_size=8)
    with rasterio.open(small.semantic) as a, rasterio.open(whole.semantic) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
    assert small.windows_run > whole.windows_run == small.windows_in_grid


def test_missing_modality_scene(inferencer, tmp_path):
    paths = make_scene(tmp_path, 200, 150)
    with SceneReader(dict(optical=paths['optical']), inferencer.spec, missing=('depth', )) as r:
        window, valid = r.read(0, 0, 64, 64)
    np.testing.assert_allclose(window[..., 3], inferencer.spec.fill_values['depth'][0])
    assert valid.all()
    result = run(inferencer, dict(optical=paths['optical']), tmp_path / 'm', missing=('depth', ))
    with rasterio.open(result.semantic) as sem:
        assert (sem.height, sem.width) == (200, 150)
    with pytest.raises(ValueError, match="no raster for modalities \\['depth'\\]"):
        SceneReader(dict(optical=paths['optical']), inferencer.spec)


@pytest.mark.parametrize('dsm_kwargs, what', [
    (dict(transform=grid_transform(20)), 'x0=500010'),
    (dict(crs='EPSG:32632'), 'EPSG:32632'),
])
def test_misaligned_dsm_is_refused(inferencer, tmp_path, dsm_kwargs, what):
    paths = make_scene(tmp_path, 64, 80, **dsm_kwargs)
    with pytest.raises(ValueError) as err:
        SceneReader(paths, inferencer.spec)
    message = str(err.value)
    assert 'disagree in georeferencing' in message and what in message
    assert paths['optical'] in message and paths['depth'] in message
    assert '--resample' in message


def test_resample_reprojects_shifted_dsm(inferencer, tmp_path):
    """With resample, a DSM shifted by 20 px is read on the optical grid."""
    height, width = 40, 80
    values = np.tile(np.arange(width + 20, dtype=np.float32), (1, height, 1))
    optical = write_geotiff(tmp_path / 'o.tif', np.zeros((3, height, width), np.uint8))
    # the DSM starts 20 px west of the optical image: optical column c is DSM column c + 20
    dsm = write_geotiff(tmp_path / 'd.tif', values, transform=grid_transform(-20))
    with SceneReader(dict(optical=optical, depth=dsm), inferencer.spec, resample=True) as r:
        img, _ = r.read(0, 0, height, width)
    np.testing.assert_allclose(img[5, 10:70, 3], np.arange(30, 90), atol=1e-3)


def test_bad_scene_inputs(inferencer, tmp_path):
    paths = make_scene(tmp_path, 32, 32)
    with pytest.raises(FileNotFoundError, match="raster of modality 'depth' not found"):
        SceneReader(dict(optical=paths['optical'], depth=str(tmp_path / 'nope.tif')),
                    inferencer.spec)
    two_band = write_geotiff(tmp_path / 'two.tif', np.zeros((2, 32, 32), np.float32))
    with pytest.raises(ValueError, match='gives 2 band\\(s\\) but the config expects 1'):
        SceneReader(dict(optical=paths['optical'], depth=two_band), inferencer.spec)
    with pytest.raises(ValueError, match="\\['sar'\\] are not in the config"):
        SceneReader(dict(paths, sar=paths['depth']), inferencer.spec)


def _thing(window, y0, x0, y1, x1, label=0, score=0.9):
    """A window prediction of a rectangle [y0, y1) x [x0, x1) in scene pixels, clipped to the
    window as the model would see it."""
    wy0, wx0, wy1, wx1 = window
    mask = np.zeros((wy1 - wy0, wx1 - wx0), bool)
    mask[max(y0 - wy0, 0):max(y1 - wy0, 0), max(x0 - wx0, 0):max(x1 - wx0, 0)] = True
    return WindowInstance.from_window_mask(label, score, window, mask)


def test_thing_across_window_border_is_one_instance():
    """A building spanning two overlapping windows (cut by each border) comes out once, with
    its full extent; a separate building and another class nearby stay separate."""
    grid = WindowGrid(128, 224, 128, 32)  # windows x in [0, 128) and [96, 224)
    left, right = grid.box(0, 0), grid.box(0, 1)
    building = (40, 70, 80, 160)  # crosses both window borders
    parts = [_thing(left, *building, score=0.8), _thing(right, *building, score=0.9)]
    assert parts[0].box == (40, 70, 80, 128) and parts[1].box == (40, 96, 80, 160)
    other = _thing(right, 10, 180, 30, 200)  # only in the right window
    tree = _thing(left, 40, 100, 80, 120, label=1)  # other class on the same pixels
    joined = join_instances(parts + [other, tree], grid.weights)
    assert len(joined) == 3
    merged = next(j for j in joined if j.members == 2)
    assert merged.box == (40, 70, 80, 160) and merged.label == 0
    assert merged.mask.all() and merged.area == 40 * 90 and merged.score == 0.9


def _window_mask(window, *rects):
    wy0, wx0, wy1, wx1 = window
    mask = np.zeros((wy1 - wy0, wx1 - wx0), bool)
    for y0, x0, y1, x1 in rects:
        mask[y0 - wy0:y1 - wy0, x0 - wx0:x1 - wx0] = True
    return WindowInstance.from_window_mask(0, 0.9, window, mask)


def test_join_takes_pixels_from_the_most_central_window():
    """Where two windows disagree about a joined object, the pixel follows the window whose
    centre is closer: in the shared strip x in [96, 128) that is the left window for x < 112."""
    grid = WindowGrid(128, 224, 128, 32)
    left, right = grid.box(0, 0), grid.box(0, 1)
    body = (40, 70, 80, 160)
    a = _window_mask(left, (40, 70, 80, 128), (80, 120, 84, 128))  # spurious strip at x >= 112
    b = _window_mask(right, (40, 96, 80, 160), (80, 96, 84, 104))  # spurious strip at x < 112
    joined = join_instances([a, b], grid.weights)
    assert len(joined) == 1
    inst = joined[0]
    assert inst.box == (40, 70, 84, 160)
    body_mask = inst.mask[body[0] - 40:body[2] - 40, body[1] - 70:body[3] - 70]
    assert body_mask.all() and not inst.mask[40:44].any()  # both spurious strips dropped
    disjoint = join_instances([_window_mask(left, (40, 110, 80, 128)),
                               _window_mask(right, (40, 96, 80, 100))], grid.weights)
    assert len(disjoint) == 2  # no agreement in the shared strip: two objects


def test_suppress_duplicates_keeps_best():
    window = (0, 0, 64, 64)
    a = _thing(window, 0, 0, 20, 20, label=0, score=0.9)
    b = _thing(window, 0, 0, 20, 19, label=2, score=0.6)  # same query under another label
    c = _thing(window, 30, 30, 40, 40, score=0.5)
    kept = suppress_duplicates([b, a, c])
    assert [k.score for k in kept] == [0.9, 0.5]


def test_semantic_scores_match_fusion_head(inferencer):
    torch.manual_seed(0)
    cls, masks = torch.randn(10, 7), torch.randn(10, 16, 16)
    fusion = inferencer.model.panoptic_fusion_head
    expected = fusion.semantic_postprocess(cls, masks).sem_seg
    scores = fusion.semantic_scores(cls, masks)
    assert scores.shape == (6, 16, 16)
    torch.testing.assert_close(scores.argmax(0, keepdim=True), expected)


def test_predict_windows_equals_model_predict(inferencer, monkeypatch):
    """Window post-processing is the fusion head's: on two windows of different sizes in one
    padded batch, the semantic argmax and the instances (only surviving queries resized) equal
    ``PMTSeg.predict`` with mmdet's full-resolution post-processing."""
    from mmdet.structures import DetDataSample

    from pmtseg_mm.apis.scene import predict_windows
    model, fusion = inferencer.model, inferencer.model.panoptic_fusion_head
    monkeypatch.setitem(fusion.test_cfg, 'max_per_image', 8)  # a selection that drops queries
    monkeypatch.setitem(fusion.test_cfg, 'lowres_postprocess', False)
    rng = np.random.RandomState(0)
    images = [np.concatenate([rng.randint(0, 255, (h, w, 3)), rng.uniform(0, 10, (h, w, 1))],
                             axis=-1).astype(np.float32) for h, w in ((128, 128), (96, 112))]
    scores, instances = predict_windows(model, images)
    samples = [DetDataSample(metainfo=dict(img_shape=img.shape[:2], ori_shape=img.shape[:2],
                                           scale_factor=(1.0, 1.0))) for img in images]
    data = model.data_preprocessor(
        dict(inputs=[torch.from_numpy(img.transpose(2, 0, 1).copy()) for img in images],
             data_samples=samples), False)
    with torch.no_grad():
        preds = model.predict(data['inputs'], data['data_samples'], tasks=('semantic', 'instance'))
    for img, score, (labels, ins_scores, masks), pred in zip(images, scores, instances, preds):
        assert score.shape == (6, ) + img.shape[:2] and masks.shape[1:] == img.shape[:2]
        np.testing.assert_array_equal(score.argmax(0), pred.pred_sem_seg.sem_seg[0].numpy())
        expected = pred.pred_instances
        assert 0 < len(labels) == len(expected) <= 8
        # the same instances, in another order: mmdet's top-k (sorted=False) orders them by the
        # number of queries it ranks
        got = sorted(zip(labels.tolist(), np.round(ins_scores, 5).tolist(),
                         [m.tobytes() for m in masks]))
        want = sorted(zip(expected.labels.tolist(), np.round(expected.scores.numpy(), 5).tolist(),
                          [m.tobytes() for m in expected.masks.numpy().astype(bool)]))
        assert got == want


def test_whole_scene_joins_thing_across_window_and_block_borders(inferencer, tmp_path,
                                                                 monkeypatch):
    """1500x1300 scene through the whole path (windowed reading, batches, blending, joining,
    writing) with an oracle in place of the network: it segments the one bright building of each
    window. The building crosses window borders and the 1024 px block border, and must come out
    as one instance with its full extent, in the raster and as one GeoJSON polygon."""
    import pmtseg_mm.apis.scene.driver as driver
    height, width = 1500, 1300
    rng = np.random.RandomState(3)
    optical = rng.randint(0, 200, (3, height, width)).astype(np.uint8)
    y0, x0, y1, x1 = 1000, 500, 1060, 620  # rows cross the block border at 1024
    optical[:, y0:y1, x0:x1] = 255
    paths = dict(optical=write_geotiff(tmp_path / 'o.tif', optical),
                 depth=write_geotiff(tmp_path / 'd.tif', np.zeros((1, height, width), np.float32)))
    calls = []

    def oracle(model, images):
        calls.append(len(images))
        scores, instances = [], []
        for img in images:
            bright = (img[..., :3] == 255).all(-1)
            score = np.zeros((6, ) + bright.shape, np.float32)
            score[0][bright], score[3][~bright] = 1.0, 1.0  # building / road
            scores.append(score)
            found = bright[None] if bright.any() else np.zeros((0, ) + bright.shape, bool)
            instances.append((np.zeros(len(found), int), np.full(len(found), 0.9), found))
        return scores, instances

    monkeypatch.setattr(driver, 'predict_windows', oracle)
    result = run(inferencer, paths, tmp_path / 'out' / 'big', batch_size=16)
    grid = WindowGrid(height, width, 128, 32)
    assert result.windows_in_grid == len(grid) == 16 * 14
    assert max(calls) == 16 and sum(calls) == result.windows_run
    assert result.num_instances == 1
    with rasterio.open(result.semantic) as sem, rasterio.open(result.panoptic) as pan, \
            rasterio.open(paths['optical']) as src:
        assert sem.crs == src.crs and sem.transform == src.transform
        assert (pan.height, pan.width) == (height, width)
        semantic, panoptic = sem.read(1), pan.read(1)
    truth = np.zeros((height, width), bool)
    truth[y0:y1, x0:x1] = True
    np.testing.assert_array_equal(semantic == 0, truth)
    np.testing.assert_array_equal(panoptic == 0 + 1 * INSTANCE_OFFSET, truth)
    with open(result.geojson) as f:
        (feature, ) = json.load(f)['features']
    assert feature['properties']['area_px'] == truth.sum()
    ring = np.array(feature['geometry']['coordinates'][0])
    assert ring[:, 0].min() == ORIGIN[0] + x0 * PIXEL and ring[:, 0].max() == ORIGIN[0] + x1 * PIXEL
    assert ring[:, 1].max() == ORIGIN[1] - y0 * PIXEL and ring[:, 1].min() == ORIGIN[1] - y1 * PIXEL


def test_scene_windows_get_the_loaders_dtype_and_range_checks(inferencer, tmp_path):
    """A 16-bit optical scene under an 8-bit declaration is refused window by window, as the
    training loader refuses the file; with on_mismatch='warn' it is read (warned once)."""
    import copy
    optical = np.full((3, 40, 50), 4000, np.uint16)
    paths = dict(optical=write_geotiff(tmp_path / 'o16.tif', optical),
                 depth=write_geotiff(tmp_path / 'd.tif', np.zeros((1, 40, 50), np.float32)))
    spec = copy.deepcopy(inferencer.spec)
    spec.options['optical'].update(dtype=('uint8', ), value_range=(0.0, 255.0))
    with SceneReader(paths, spec) as reader:
        with pytest.raises(ValueError, match=r"'optical' raster .*o16.tif in window \(x=0, y=0, "
                           r'w=50, h=40\) is uint16 but `modalities.optical.dtype` expects uint8'):
            reader.read(0, 0, 40, 50)
    spec.options['optical']['on_mismatch'] = 'warn'
    with SceneReader(paths, spec) as reader:
        img, valid = reader.read(0, 0, 40, 50)
    assert img.shape == (40, 50, 4) and img[..., :3].max() == 4000 and valid.all()
