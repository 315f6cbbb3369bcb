"""Whole-scene inference error paths and options: bad arguments, non-finite pixels, the int32
panoptic guard, nothing half-written when a run fails, ``min_area``, ``score_thr`` and
``join_iou``. The model is the tiny PMTSeg with a stub ``predict_window_scores`` whose instances
the test chooses."""
import os

import numpy as np
import pytest
import rasterio
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.structures import InstanceData

from _geotiff import write_scene
from pmtseg_mm.apis.scene import SceneInstance, infer_scene
from pmtseg_mm.apis.scene.writer import write_panoptic

H = W = 160
WINDOW, OVERLAP = 64, 16


def scene(tmp_path, depth=None):
    rng = np.random.RandomState(0)
    depth = rng.uniform(0, 5, (1, H, W)).astype(np.float32) if depth is None else depth
    return write_scene(tmp_path, dict(optical=rng.randint(0, 255, (3, H, W)).astype(np.uint8),
                                      depth=depth), files=dict(optical='o.tif', depth='d.tif'))


def stub(instances):
    """``instances(h, w)`` -> [(label, score, (y0, x0, y1, x1) in window pixels)] per window."""
    def predict_window_scores(inputs, data_samples):
        out = []
        for sample in data_samples:
            h, w = sample.img_shape
            scores = torch.zeros(6, h, w)
            scores[3] = 1.0  # road (stuff) everywhere
            found = instances(h, w)
            masks = torch.zeros(len(found), h, w, dtype=torch.bool)
            for k, (_, _, (y0, x0, y1, x1)) in enumerate(found):
                masks[k, y0:y1, x0:x1] = True
            out.append(dict(sem_scores=scores, ins_results=InstanceData(
                labels=torch.tensor([f[0] for f in found], dtype=torch.long),
                scores=torch.tensor([f[1] for f in found], dtype=torch.float32),
                masks=masks)))
        return out
    return predict_window_scores


def run(inferencer, paths, prefix, **kwargs):
    kwargs = dict(dict(window=WINDOW, overlap=OVERLAP, block_size=128, progress=False), **kwargs)
    return infer_scene(inferencer.model, inferencer.spec, paths, str(prefix),
                       inferencer.dataset_meta['classes'], 3, **kwargs)


def test_bad_arguments_name_the_option(inferencer, tmp_path):
    paths = scene(tmp_path)
    with pytest.raises(ValueError, match=r'block_size \(32\) must be >= window \(64\)'):
        run(inferencer, paths, tmp_path / 's', block_size=32)
    with pytest.raises(ValueError, match=r'need 0 < num_things \(7\) <= number of classes \(6\)'):
        infer_scene(inferencer.model, inferencer.spec, paths, str(tmp_path / 's'),
                    inferencer.dataset_meta['classes'], 7)
    with pytest.raises(TypeError, match='whole-scene inference needs a PMTSeg model'):
        infer_scene(torch.nn.Linear(2, 2), inferencer.spec, paths, str(tmp_path / 's'),
                    inferencer.dataset_meta['classes'], 3, window=WINDOW, progress=False)


def test_nan_pixels_need_nan_value_and_leave_no_partial_output(inferencer, tmp_path):
    depth = np.random.RandomState(1).uniform(0, 5, (1, H, W)).astype(np.float32)
    depth[0, 150, 150] = np.nan
    paths = scene(tmp_path, depth)
    with pytest.raises(ValueError, match=r"modality 'depth' raster .*d.tif in window .* contains "
                       r'NaN pixels \(1\); set `modalities.depth.nan_value`'):
        run(inferencer, paths, tmp_path / 'out' / 's')
    # the blocks finished before the failure are kept for a rerun; no output file, no temp file
    left = sorted(os.listdir(tmp_path / 'out'))
    assert left == ['s_progress'], left


def test_panoptic_int32_guard():
    too_many = (2**31 - 6) // INSTANCE_OFFSET  # (n + 1) * 1000 + 6 classes >= 2**31
    instances = [SceneInstance(0, 0.5, (0, 0, 1, 1), np.ones((1, 1), bool))] * too_many
    with pytest.raises(ValueError, match=f'{too_many} instances do not fit the int32 panoptic'):
        write_panoptic(None, [], 'unused.tif', 'unused_panoptic.tif', instances, 3, 6)


def test_score_thr_and_min_area_filter_instances(inferencer, tmp_path, monkeypatch):
    """Per window: a building of 9 px at score 0.9, a car of 3 px at 0.9 (under min_area=4) and
    a tree of 16 px at 0.4 (under score_thr=0.5). Only buildings reach the outputs."""
    monkeypatch.setattr(inferencer.model, 'predict_window_scores', stub(lambda h, w: [
        (0, 0.9, (20, 20, 23, 23)), (2, 0.9, (40, 40, 41, 43)), (1, 0.4, (5, 40, 9, 44))]))
    paths = scene(tmp_path)
    result = run(inferencer, paths, tmp_path / 's', score_thr=0.5, min_area=4)
    with rasterio.open(result.panoptic) as f:
        panoptic = f.read(1)
    labels = set(np.unique(panoptic[panoptic >= INSTANCE_OFFSET] % INSTANCE_OFFSET).tolist())
    assert labels == {0}
    # windows start at 0, 48, 96 on both axes (64 px, 16 px overlap, 160 px scene): 3 x 3
    # windows, each with its building at window pixels 20-22, i.e. at scene pixels 20, 68 or
    # 116 + (0..2), inside that window alone: 9 buildings of 9 px
    starts = [0, 48, 96]
    assert result.num_instances == 9
    building = np.zeros((H, W), bool)
    for y in starts:
        for x in starts:
            building[y + 20:y + 23, x + 20:x + 23] = True
    np.testing.assert_array_equal(panoptic >= INSTANCE_OFFSET, building)
    assert (panoptic[panoptic < INSTANCE_OFFSET] == 3).all()  # road everywhere else
    kept = run(inferencer, paths, tmp_path / 'all', score_thr=0.3, min_area=1)
    with rasterio.open(kept.panoptic) as f:
        everything = f.read(1)
    assert set(np.unique(everything[everything >= INSTANCE_OFFSET] % INSTANCE_OFFSET).tolist()) \
        == {0, 1, 2}


def test_join_iou_decides_whether_window_predictions_join(inferencer, tmp_path, monkeypatch):
    """Every window predicts one building over its whole area: neighbouring windows agree on
    their shared strip (IoU 1 there), so with join_iou <= 1 the scene has one instance; a
    threshold above 1 can never be met and every window keeps its own."""
    monkeypatch.setattr(inferencer.model, 'predict_window_scores',
                        stub(lambda h, w: [(0, 0.9, (0, 0, h, w))]))
    paths = scene(tmp_path)
    joined = run(inferencer, paths, tmp_path / 'j', join_iou=0.5)
    separate = run(inferencer, paths, tmp_path / 's', join_iou=1.01)
    assert joined.num_instances == 1
    assert separate.num_instances == joined.windows_in_grid == 9  # 3 x 3 windows of 64, step 48
