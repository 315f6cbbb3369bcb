"""Smoke set of a second OpenMMLab line (.ci/run runs it on the onedl fork line, 0 skipped allowed).

Needs ``PMTSEG_CROSSLINE_DIR``: a folder made by ``tools/ci/crossline.py prepare`` on the default
line (synthetic data, the tiny checkpoint and its metrics there). ``PMTSEG_EXPECT_STACK`` names the
line this must run on. The installed versions are printed in the header (conftest.py).
"""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from crossline import (METRIC_KEYS, ROOT, TINY, checkpoint_metrics, cli_options,  # noqa: E402
                       data_options, runner_config)

FOLDER = os.environ.get('PMTSEG_CROSSLINE_DIR', '')
# the Swin/ConvNeXt configs are left out: ConvNeXt needs torchvision (an opt-in install CI does
# not make), and neither was checked on this line yet (docs/install.md)
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p
                 and not any(b in osp.basename(p) for b in ('swin', 'convnext')))
TINY_CONFIGS = [p for p in CONFIGS if '-tiny' in osp.basename(p)]
# equal to the default line's up to float32 reduction order (the same weights and data)
TOLERANCE = 1e-4


def _ids(paths):
    return [osp.relpath(p, ROOT) for p in paths]


@pytest.fixture(scope='session')
def folder():
    assert FOLDER and osp.isfile(osp.join(FOLDER, 'tiny.pth')), \
        'PMTSEG_CROSSLINE_DIR must name a folder made by tools/ci/crossline.py prepare'
    return FOLDER


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def test_import_gives_the_expected_line_and_registers_every_part():
    import pmtseg_mm
    from mmdet.registry import DATASETS, METRICS, MODELS, TRANSFORMS
    from mmseg.registry import MODELS as SEG_MODELS
    from mmseg.registry import TRANSFORMS as SEG_TRANSFORMS
    assert pmtseg_mm.STACK == os.environ.get('PMTSEG_EXPECT_STACK', pmtseg_mm.STACK)
    for name in ('PMTSeg', 'PSHHead', 'TMSFNeck', 'DualBackbone', 'TMAALoss', 'SumFusionNeck',
                 'SeparateTaskHeads', 'MultiModalDataPreprocessor', 'MultiTaskFusionHead'):
        assert MODELS.get(name) is not None, name
    for name in ('MultiModalEncoderDecoder', 'DualBackbone', 'TMAALoss'):
        assert SEG_MODELS.get(name) is not None, name
    assert SEG_MODELS.get('DualBackbone') is MODELS.get('DualBackbone')
    for name in ('LoadMultiModalImages', 'ModalityTransform'):
        assert TRANSFORMS.get(name) is not None and SEG_TRANSFORMS.get(name) is not None
    assert DATASETS.get('MultiModalCocoPanopticDataset') is not None
    for name in ('MultiTaskCocoPanopticMetric', 'MultiTaskCocoMetric', 'MultiTaskSemSegMetric'):
        assert METRICS.get(name) is not None, name


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_every_shipped_config_builds_its_model(path):
    from mmengine.config import Config
    from mmengine.registry import MODELS, TRANSFORMS, DefaultScope

    from pmtseg_mm.utils import drop_pretrained
    cfg = Config.fromfile(path)
    drop_pretrained(cfg.model)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
        assert sum(p.numel() for p in model.parameters()) > 0
        for step in cfg.train_dataloader.dataset.pipeline:
            TRANSFORMS.build(step)


@pytest.mark.parametrize('path', TINY_CONFIGS, ids=_ids(TINY_CONFIGS))
def test_one_training_step_of_each_tiny_config(path, folder, tmp_path):
    from mmengine.runner import Runner
    cfg = runner_config(path, osp.join(folder, 'data'), str(tmp_path), 1)
    cfg.default_hooks.checkpoint.save_last = False
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    losses = {k: v for k, v in runner.message_hub.log_scalars.items() if k.startswith('train/')}
    assert 'train/loss' in losses and np.isfinite(losses['train/loss'].current())


def test_all_nine_metrics_equal_the_default_lines(folder, tmp_path):
    import pmtseg_mm
    here = checkpoint_metrics(osp.join(folder, 'data'), osp.join(folder, 'tiny.pth'),
                              str(tmp_path))
    with open(osp.join(folder, f'metrics_{pmtseg_mm.STACK}.json'), 'w') as f:
        json.dump(here, f, indent=1)
    with open(osp.join(folder, 'metrics_2023.json')) as f:
        reference = json.load(f)
    assert set(here) == set(METRIC_KEYS) == set(reference)
    assert any(v > 0 for v in here.values()), 'an all-zero test says nothing'
    differ = {k: (reference[k], here[k]) for k in METRIC_KEYS
              if abs(reference[k] - here[k]) > TOLERANCE}
    assert not differ, f'metrics differ from the default line (2023, {pmtseg_mm.STACK}): {differ}'


def _inferencer(folder):
    from pmtseg_mm.apis import MultiModalInferencer
    return MultiModalInferencer(TINY, weights=osp.join(folder, 'tiny.pth'), device='cpu')


def test_inferencer_gives_the_three_tasks(folder):
    rng = np.random.RandomState(0)
    inputs = dict(optical=rng.randint(0, 255, (64, 80, 3)).astype(np.uint8),
                  depth=rng.uniform(0, 10, (64, 80)).astype(np.float32))
    pred = _inferencer(folder)(inputs)['predictions'][0]
    assert pred['semantic'].shape == (64, 80) and pred['semantic'].max() < 6
    assert pred['panoptic'].shape == (64, 80)
    assert (np.asarray(pred['instances']['labels']) < 3).all()


def test_whole_scene_inference_on_a_generated_scene(folder, tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from pmtseg_mm.apis import infer_scene
    rng = np.random.RandomState(0)
    transform = from_origin(500000.0, 4800000.0, 0.5, 0.5)
    paths = {}
    for name, data in (('optical', rng.randint(0, 255, (3, 200, 260)).astype(np.uint8)),
                       ('depth', rng.uniform(0, 10, (1, 200, 260)).astype(np.float32))):
        paths[name] = str(tmp_path / f'{name}.tif')
        with rasterio.open(paths[name], 'w', driver='GTiff', width=260, height=200, count=len(data),
                           dtype=data.dtype, crs='EPSG:32631', transform=transform) as f:
            f.write(data)
    inferencer = _inferencer(folder)
    infer_scene(inferencer.model, inferencer.spec, paths, str(tmp_path / 'scene'),
                inferencer.dataset_meta['classes'], 3, window=128, overlap=32, score_thr=0.02,
                progress=False)
    with rasterio.open(tmp_path / 'scene_semantic.tif') as f:
        semantic = f.read(1)
        assert f.crs.to_epsg() == 32631 and f.transform == transform
    assert semantic.shape == (200, 260) and semantic.max() < 6
    with open(tmp_path / 'scene_instances.geojson') as f:
        assert json.load(f)['type'] == 'FeatureCollection'


def test_mim_train_one_iteration(folder, tmp_path):
    work_dir = str(tmp_path / 'work')
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'mim', 'train', 'pmtseg_mm', TINY, '--work-dir', work_dir,
         '--cfg-options', 'train_cfg.max_iters=1', 'train_cfg.val_interval=10',
         'default_hooks.checkpoint.interval=1', 'default_hooks.logger.interval=1'] + cli_options(data_options(osp.join(folder,
                                                                                   'data'))),
        cwd=str(tmp_path), capture_output=True, text=True, timeout=900, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert re.search(r'site-packages/pmtseg_mm/\.mim/tools/train\.py', out)
    assert re.search(r'Iter\(train\) \[1/1\]', out) and osp.isfile(osp.join(work_dir, 'iter_1.pth'))
