"""One prediction path: the inferencer, the benchmark's ``predict`` and whole-scene inference
choose tasks per call through ``PMTSeg.predict`` / ``predict_window_scores`` and never write the
model's ``test_tasks``."""
import importlib.util
import os.path as osp
import time

import numpy as np
import pytest

from pmtseg_mm.apis import infer_scene
from pmtseg_mm.structures import check_tasks, fusion_switches

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture
def locked(inferencer, monkeypatch):
    """The shared inferencer whose model's ``test_tasks`` raises on every write."""
    model = inferencer.model

    class Locked(type(model)):

        @property
        def test_tasks(self):
            return ('semantic', 'instance', 'panoptic')

        @test_tasks.setter
        def test_tasks(self, value):
            raise AttributeError('test_tasks must not be written by callers')

    monkeypatch.setattr(model, '__class__', Locked)
    with pytest.raises(AttributeError, match='must not be written'):
        model.test_tasks = ('semantic', )
    return inferencer


def test_inferencer_chooses_tasks_per_call(locked):
    data = dict(optical=np.zeros((64, 80, 3), np.uint8), depth=np.ones((64, 80), np.float32))
    (pred, ) = locked(data, tasks=('semantic', ))['predictions']
    assert set(pred) == {'semantic'} and pred['semantic'].shape == (64, 80)
    (pred, ) = locked(data, tasks=['panoptic', 'instance'])['predictions']
    assert set(pred) == {'instances', 'panoptic'}
    (pred, ) = locked(data)['predictions']  # the config's tasks
    assert set(pred) == {'semantic', 'instances', 'panoptic'}
    with pytest.raises(ValueError, match="tasks must be distinct names from .*'depth'"):
        locked(data, tasks=('depth', ))


def test_benchmark_predict_chooses_tasks_per_call(locked):
    spec = importlib.util.spec_from_file_location(
        'benchmark_models', osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_models.py'))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.select_tasks(locked.model, ['instance']) == dict(tasks=('instance', ))
    start = time.perf_counter()
    seconds = bench.measure_latency(locked.model, ('instance', ), size=64, repeats=1, warmup=0,
                                    device='cpu')
    # a wall time depends on the machine: it can only lie within the call that measured it
    assert 0 < seconds <= time.perf_counter() - start


def test_whole_scene_inference_with_locked_tasks(locked, tmp_path):
    from test_scene import make_scene
    paths = make_scene(tmp_path, 150, 140)
    result = infer_scene(locked.model, locked.spec, paths, str(tmp_path / 'out'),
                         locked.dataset_meta['classes'], 3, window=128, overlap=32,
                         score_thr=0.0, progress=False)
    assert (result.height, result.width, result.windows_run) == (150, 140, 4)


def test_task_names_and_fusion_switches():
    assert check_tasks(None) == ('semantic', 'instance', 'panoptic')
    assert check_tasks('panoptic') == ('panoptic', )
    for bad in ((), ('semantic', 'semantic'), ('depth', )):
        with pytest.raises(ValueError, match='`test_cfg.tasks` must be distinct names'):
            check_tasks(bad, '`test_cfg.tasks`')
    assert fusion_switches(['semantic', 'panoptic'], semantic_supported=True) == dict(
        panoptic_on=True, instance_on=False, semantic_on=True)
    assert fusion_switches(['semantic', 'panoptic'], semantic_supported=False) == dict(
        panoptic_on=True, instance_on=False, semantic_on=False)
