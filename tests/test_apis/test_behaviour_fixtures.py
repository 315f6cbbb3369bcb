"""Outputs that restructuring must not change: the inferencer's predictions, whole-scene rasters
and GeoJSON, and the metrics of ``tools/test.py``, for fixed inputs and a fixed random-weight
tiny PMTSeg (16-channel ResNet-18s) fitted for 40 iterations by ``tools/train.py`` on three
generated 64x64 images (seed 0; thresholds lowered so that every output holds instances and
several classes).

The expected values in ``data/behaviour_fixtures.json`` were recorded on the code before the
inference layer became a client of ``PMTSeg.predict`` (one modality contract, one prediction
path) by ``python tests/test_apis/test_behaviour_fixtures.py --write``; arrays are compared by
digest, with a summary beside each digest so that a failure says what moved.
"""
import hashlib
import json
import os
import os.path as osp
import re
import subprocess
import sys
from typing import Any, Dict

import numpy as np
import pytest
import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
sys.path.insert(0, HERE)
from conftest import TINY  # noqa: E402
from _geotiff import write_geotiff  # noqa: E402

FIXTURES = osp.join(HERE, 'data', 'behaviour_fixtures.json')
METRIC_RE = re.compile(r'((?:panoptic|instance|semantic)/\w+): (-?\d+\.\d+)')


def digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    text = f'{array.dtype.str}{array.shape}'.encode() + array.tobytes()
    return hashlib.sha1(text).hexdigest()[:16]


#: The shared tiny config (conftest) with thresholds low enough for instances in every output.
CONFIG = """_base_ = {base!r}
r18 = dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), base_channels=16,
           stem_channels=16, init_cfg=None)
model = dict(backbone=dict(backbones=[r18, r18]), neck=dict(in_channels=[[16, 32, 64, 128]] * 2),
             test_cfg=dict(object_mask_thr=0.05, max_per_image=20))
"""


def fit(folder: str) -> Dict[str, str]:
    """Data, config and the checkpoint of the fitted model (``tools/train.py``, 40 iterations)."""
    from pmtseg_mm.datasets.synthetic import generate_synthetic
    sys.path.insert(0, osp.join(ROOT, 'tests', 'test_tools'))
    from test_train_test import _data_options, _run
    data_root = osp.join(folder, 'data')
    generate_synthetic(data_root, num_train=3, num_val=3, size=64, aux='depth', seed=0,
                       progress=False)
    config = osp.join(folder, 'tiny.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(base=TINY))
    work_dir = osp.join(folder, 'work')
    options = _data_options(data_root) + ['randomness.seed=0', 'optim_wrapper.optimizer.lr=0.001',
                                          'default_hooks.checkpoint.interval=40']
    _run(['tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
          'train_cfg.max_iters=40', 'train_cfg.val_interval=1000'] + options)
    return dict(data_root=data_root, config=config, checkpoint=osp.join(work_dir, 'iter_40.pth'),
                options=options)


def fixture_inferencer(fitted: Dict[str, str]):
    from pmtseg_mm.apis import MultiModalInferencer
    return MultiModalInferencer(fitted['config'], fitted['checkpoint'], device='cpu')


def inferencer_outputs(inferencer) -> Dict[str, Any]:
    out = {}
    for seed, size in ((0, (96, 112)), (1, (128, 128))):
        rng = np.random.RandomState(seed)
        data = dict(optical=rng.randint(0, 255, size + (3, )).astype(np.uint8),
                    depth=rng.uniform(0, 10, size).astype(np.float32))
        pred = inferencer(data)['predictions'][0]
        inst = pred['instances']
        out[f'image{seed}'] = dict(
            semantic=digest(pred['semantic'].astype(np.int64)),
            semantic_classes=sorted(np.unique(pred['semantic']).tolist()),
            instances=digest(np.concatenate([
                inst['labels'].astype(np.float64), np.round(inst['scores'], 4)])),
            instance_masks=digest(inst['masks'].astype(bool)),
            instance_labels=sorted(inst['labels'].tolist()),
            panoptic=digest(pred['panoptic'].astype(np.int64)),
            panoptic_ids=len(np.unique(pred['panoptic'])))
    return out


def scene_outputs(inferencer, folder: str) -> Dict[str, Any]:
    import rasterio

    from pmtseg_mm.apis.scene import infer_scene
    rng = np.random.RandomState(5)
    height, width = 300, 260
    paths = dict(optical=write_geotiff(osp.join(folder, 'o.tif'),
                                       rng.randint(0, 255, (3, height, width)).astype(np.uint8)),
                 depth=write_geotiff(osp.join(folder, 'd.tif'),
                                     rng.uniform(0, 10, (1, height, width)).astype(np.float32)))
    result = infer_scene(inferencer.model, inferencer.spec, paths, osp.join(folder, 'out'),
                         inferencer.dataset_meta['classes'], 3, window=128, overlap=32,
                         block_size=256, batch_size=3, score_thr=0.05, progress=False)
    with rasterio.open(result.semantic) as sem, rasterio.open(result.panoptic) as pan:
        semantic, panoptic = sem.read(1), pan.read(1)
    with open(result.geojson) as f:
        features = json.load(f)['features']
    return dict(semantic=digest(semantic), semantic_classes=sorted(np.unique(semantic).tolist()),
                panoptic=digest(panoptic), panoptic_ids=len(np.unique(panoptic)),
                features=len(features),
                feature_classes=sorted(f['properties']['class'] for f in features),
                geojson=hashlib.sha1(
                    json.dumps(features, sort_keys=True).encode()).hexdigest()[:16])


def test_tool_metrics(fitted: Dict[str, str]) -> Dict[str, float]:
    """All metrics ``tools/test.py`` prints for the fitted model on the three images."""
    from test_train_test import _run
    out = _run(['tools/test.py', fitted['config'], fitted['checkpoint'], '--work-dir',
                osp.join(osp.dirname(fitted['config']), 'test'), '--cfg-options'] +
               fitted['options'])
    return {key: round(float(value), 2) for key, value in METRIC_RE.findall(out)}


test_tool_metrics.__test__ = False  # a helper, not a test


def all_outputs(folder: str) -> Dict[str, Any]:
    torch.set_num_threads(1)
    fitted = fit(folder)
    inferencer = fixture_inferencer(fitted)
    return dict(inferencer=inferencer_outputs(inferencer),
                scene=scene_outputs(inferencer, folder),
                test_tool=test_tool_metrics(fitted))


@pytest.fixture(scope='module')
def outputs(tmp_path_factory):
    return all_outputs(str(tmp_path_factory.mktemp('behaviour')))


@pytest.fixture(scope='module')
def recorded():
    with open(FIXTURES) as f:
        return json.load(f)


@pytest.mark.parametrize('part', ['inferencer', 'scene', 'test_tool'])
def test_outputs_unchanged(outputs, recorded, part):
    assert outputs[part] == recorded[part]


def test_fixtures_are_not_degenerate(recorded):
    """Each compared output holds at least one instance and two classes."""
    for image in recorded['inferencer'].values():
        assert len(image['semantic_classes']) >= 2 and len(image['instance_labels']) >= 1
        assert image['panoptic_ids'] >= 3
    scene = recorded['scene']
    assert len(scene['semantic_classes']) >= 2 and scene['features'] >= 1
    assert scene['panoptic_ids'] >= 3
    assert len(recorded['test_tool']) >= 9


if __name__ == '__main__':
    import tempfile
    if sys.argv[1:] != ['--write']:
        sys.exit('usage: python tests/test_apis/test_behaviour_fixtures.py --write')
    with tempfile.TemporaryDirectory() as tmp:
        record = all_outputs(tmp)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    record['recorded_on'] = commit
    os.makedirs(osp.dirname(FIXTURES), exist_ok=True)
    with open(FIXTURES, 'w') as f:
        json.dump(record, f, indent=1, sort_keys=True)
    print(json.dumps(record, indent=1, sort_keys=True))
