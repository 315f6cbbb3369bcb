"""A whole-scene run killed with SIGKILL mid-way and rerun writes the same rasters and GeoJSON as
an uninterrupted run; another model refuses to resume unless restarted."""
import copy
import json
import os
import os.path as osp
import signal
import subprocess
import sys

import numpy as np
import pytest
import rasterio
import torch

from _geotiff import write_scene
from pmtseg_mm.apis.scene import infer_scene

HERE = osp.dirname(osp.abspath(__file__))
H, W = 300, 260
OPTIONS = dict(window=64, overlap=16, block_size=128, score_thr=0.02, progress=False)
KILL_AFTER = 4  # of the 3 x 3 = 9 blocks

CHILD = f"""
import os, signal, sys, torch
sys.path.insert(0, {HERE!r})
from conftest import tiny_config
from pmtseg_mm.apis import MultiModalInferencer
from pmtseg_mm.apis.scene import infer_scene, progress
torch.manual_seed(0)  # as the `inferencer` fixture: the same weights
torch.set_num_threads(1)
inferencer = MultiModalInferencer(tiny_config(), device='cpu')
save, saved = progress.SceneProgress.save_block, []
def save_then_die(self, *args, **kwargs):
    save(self, *args, **kwargs)
    saved.append(1)
    if len(saved) == {KILL_AFTER}:
        os.kill(os.getpid(), signal.SIGKILL)
progress.SceneProgress.save_block = save_then_die
paths, prefix = eval(sys.argv[1]), sys.argv[2]
infer_scene(inferencer.model, inferencer.spec, paths, prefix,
            inferencer.dataset_meta['classes'], 3, **{OPTIONS!r})
"""


def scene(folder):
    rng = np.random.RandomState(1)
    optical = rng.randint(0, 255, (3, H, W)).astype(np.uint8)
    return write_scene(folder, dict(optical=optical,
                                    depth=rng.uniform(0, 10, (1, H, W)).astype(np.float32)))


def run(inferencer, paths, prefix, model=None, **kwargs):
    return infer_scene(model or inferencer.model, inferencer.spec, paths, str(prefix),
                       inferencer.dataset_meta['classes'], 3, **OPTIONS, **kwargs)


def killed_run(paths, prefix):
    child = subprocess.run([sys.executable, '-c', CHILD, repr(paths), str(prefix)],
                           env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True,
                           text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    folder = f'{prefix}_progress'
    assert sorted(f for f in os.listdir(folder) if f.endswith('.npz')) == \
        [f'block_{i}.npz' for i in range(KILL_AFTER)]
    assert not osp.exists(f'{prefix}_semantic.tif')
    assert not osp.exists(f'{prefix}_instances.geojson')


def outputs(result):
    with rasterio.open(result.semantic) as sem, rasterio.open(result.panoptic) as pan:
        rasters = (sem.read(), pan.read(), sem.profile, pan.profile)
    with open(result.geojson) as f:
        return rasters, json.load(f)


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_outputs(inferencer, tmp_path):
    paths = scene(tmp_path)
    whole = run(inferencer, paths, tmp_path / 'whole')
    assert whole.num_instances > 0 and whole.blocks_resumed == 0
    assert not osp.exists(tmp_path / 'whole_progress')  # removed once complete

    killed_run(paths, tmp_path / 'resumed')
    resumed = run(inferencer, paths, tmp_path / 'resumed')
    assert resumed.blocks_resumed == KILL_AFTER and resumed.windows_run < whole.windows_run
    (sem_a, pan_a, prof_a, pprof_a), json_a = outputs(whole)
    (sem_b, pan_b, prof_b, pprof_b), json_b = outputs(resumed)
    np.testing.assert_array_equal(sem_a, sem_b)
    np.testing.assert_array_equal(pan_a, pan_b)
    assert prof_a == prof_b and pprof_a == pprof_b
    assert json_a == json_b and len(json_a['features']) == whole.num_instances
    assert not osp.exists(tmp_path / 'resumed_progress')

    # another checkpoint (one weight changed) refuses to resume; --restart starts over
    killed_run(paths, tmp_path / 'other')
    other = copy.deepcopy(inferencer.model)
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    with pytest.raises(ValueError, match=r'other_progress holds the progress of a run with '
                       r'another model; rerun with restart=True \(--restart\)'):
        run(inferencer, paths, tmp_path / 'other', model=other)
    with pytest.raises(ValueError, match='another options'):
        run(inferencer, paths, tmp_path / 'other', join_iou=0.6)
    restarted = run(inferencer, paths, tmp_path / 'other', restart=True)
    assert restarted.blocks_resumed == 0
    np.testing.assert_array_equal(outputs(restarted)[0][0], sem_a)
