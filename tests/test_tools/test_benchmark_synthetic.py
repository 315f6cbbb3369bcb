"""tools/analysis_tools/benchmark_synthetic.py: subsets, configs, tables, args, and main ->
run_one -> test_checkpoint on a 2-iteration budget."""
import importlib.util
import json
import os
import os.path as osp
import time

import pytest

from pmtseg_mm.datasets.synthetic import SYNTHETIC_METAINFO, generate_synthetic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'benchmark_synthetic', osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_synthetic.py'))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_condition_subsets_partition_val(tmp_path):
    root = str(tmp_path / 'data')
    summary = generate_synthetic(root, num_train=1, num_val=24, size=32, seed=1, progress=False)
    subsets = bench.condition_subsets(root)
    counts = {c: n for c, (_, n) in subsets.items()}
    assert counts == {c: n for c, n in summary['val']['conditions'].items() if n}
    seen = []
    for cond, (name, n) in subsets.items():
        for kind in ('panoptic', 'instances'):
            with open(osp.join(root, 'annotations', name.replace('panoptic', kind))) as f:
                sub = json.load(f)
            assert len(sub['images']) == n and {i['condition'] for i in sub['images']} == {cond}
            ids = {i['id'] for i in sub['images']}
            assert sub['annotations'] and all(a['image_id'] in ids for a in sub['annotations'])
        seen += sorted(ids)
    assert sorted(seen) == list(range(24))  # every val image in exactly one subset


def test_build_cfg_budget_and_data(tmp_path):
    args = bench.parse_args(['--iters', '500', '--data-root', 'data/x', '--batch-size', '2'])
    cfg = bench.build_cfg(args.configs[0], args, seed=3, work_dir=str(tmp_path))
    assert cfg.train_cfg.max_iters == 500 and cfg.param_scheduler.end == 500
    assert cfg.param_scheduler.milestones == [445, 480]  # 0.89 and 0.96 of the budget
    assert cfg.val_cfg is None and cfg.randomness.seed == 3
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.test_dataloader.dataset.data_root == 'data/x/'
    assert [e.get('ann_file') for e in cfg.test_evaluator] == [
        'data/x/annotations/panoptic_val.json', 'data/x/annotations/instances_val.json', None]


def test_tables():
    def run(pq):
        metrics = {key: pq for key in bench.COLUMNS.values()}
        metrics.update({key.format(c): pq for c in ('building', 'tree') for key in
                        bench.CLASS_KEYS.values()})
        return dict(all=metrics, clear=metrics, dark=metrics)

    text = bench.format_tables({'A': [run(40.0), run(50.0)], 'B': [run(10.0)]},
                               ('building', 'tree'))
    lines = text.splitlines()
    assert lines[2].startswith('| A | 45.0 ± 5.0 |') and lines[3].startswith('| B | 10.0 |')
    assert '| A | 45.0 ± 5.0 | 45.0 ± 5.0 | 45.0 ± 5.0 | 45.0 ± 5.0 | – | – |' in lines
    assert lines[-2].count('45.0 ± 5.0') == 6


@pytest.mark.parametrize('argv, words', [
    (['--configs', 'no/such.py'], "config file 'no/such.py' does not exist"),
    (['--names', 'a', 'b'], 'one distinct name per config'),
    (['--jobs', '0'], '--jobs and --threads must be >= 1'),
])
def test_bad_arguments(argv, words, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert words in capsys.readouterr().err


def test_default_models_exist():
    assert list(bench.MODELS) == ['PMTSeg', 'Mask2Former-EF', 'Mask2Former (optical)']
    for config in bench.MODELS.values():
        assert osp.isfile(osp.join(ROOT, config))
    assert len(SYNTHETIC_METAINFO['classes']) == 6


def test_test_twins_found_next_to_config():
    config = osp.join(ROOT, 'configs', 'pmtseg',
                      'pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128.py')
    twins = bench.test_twins(config)
    assert twins == {'optical-only': config[:-3] + '_test-optical-only.py'}
    assert bench.test_twins(osp.join(ROOT, bench.MODELS['Mask2Former (optical)'])) == {}
    assert bench.parse_args(['--test-twins']).test_twins


def test_twin_rows_in_tables():
    metrics = {key: 30.0 for key in bench.COLUMNS.values()}
    runs = {'PMTSeg': [dict(all=metrics)], 'PMTSeg [optical-only]': [dict(all=metrics)]}
    lines = bench.format_tables(runs, ()).splitlines()
    assert lines[3].startswith('| PMTSeg [optical-only] | 30.0 |')


# ----------------------------------------------------------------------------- benchmark_train_iter
_spec_iter = importlib.util.spec_from_file_location(
    'benchmark_train_iter', osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_train_iter.py'))
train_iter = importlib.util.module_from_spec(_spec_iter)
_spec_iter.loader.exec_module(train_iter)
EF_TINY = 'configs/baselines/mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'


@pytest.mark.slow
def test_train_iter_benchmark_runs_each_config_through_the_runner(tmp_path, capsys):
    root = str(tmp_path / 'data')
    generate_synthetic(root, num_train=4, num_val=1, size=64, seed=0, progress=False)
    common = ['--iters', '4', '--skip', '1', '--threads', '1', '--data-root', root,
              '--cfg-options', 'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False']
    start = time.perf_counter()
    train_iter.main([osp.join(ROOT, EF_TINY)] * 2 + ['--names', 'grouped', 'per-param'] + common +
                    ['--cfg-options-of', '1',
                     "optim_wrapper.constructor='DefaultOptimWrapperConstructor'"])
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith('| grouped |') or
            line.startswith('| per-param |')]
    assert len(rows) == 2 and rows[0].endswith('| 1.00 |')
    # seconds per iteration depend on the machine: each config's 4 - 1 = 3 timed iterations
    # ran inside this call, so 3 x (mean of config 1 + mean of config 2) <= its wall time
    medians, means = ([float(r.split('|')[k]) for r in rows] for k in (2, 3))
    assert min(medians) > 0 and min(means) > 0 and 3 * sum(means) <= elapsed
    with pytest.raises(SystemExit):
        train_iter.main([osp.join(ROOT, EF_TINY), '--cfg-options-of', '3', 'a=1'])
    assert 'not the index of a config' in capsys.readouterr().err


@pytest.mark.slow
def test_main_trains_tests_and_tabulates_a_tiny_budget(tmp_path, monkeypatch, capsys):
    """main -> run_one -> test_checkpoint on 2 iterations of the tiny PMTSeg, in this process
    (a thread pool instead of spawned workers); the run file, the tables and a rerun that reads
    the run file instead of training."""
    from concurrent.futures import ThreadPoolExecutor

    import torch
    root = str(tmp_path / 'data')
    summary = generate_synthetic(root, num_train=2, num_val=4, size=64, seed=5, progress=False)
    conditions = {c: n for c, n in summary['val']['conditions'].items() if n}
    monkeypatch.setattr(bench, 'ProcessPoolExecutor',
                        lambda n, mp_context=None: ThreadPoolExecutor(n))
    monkeypatch.setenv('OMP_NUM_THREADS', os.environ.get('OMP_NUM_THREADS', '2'))
    monkeypatch.setenv('MKL_NUM_THREADS', os.environ.get('MKL_NUM_THREADS', '2'))
    threads = torch.get_num_threads()
    config = osp.join(ROOT, bench.MODELS['PMTSeg'])
    argv = ['--configs', config, '--names', 'tiny', '--iters', '2', '--seeds', '0',
            '--batch-size', '2', '--threads', '1', '--data-root', root,
            '--work-dir', str(tmp_path / 'work'), '--results-dir', str(tmp_path / 'results')]
    try:
        bench.main(argv)
        first = capsys.readouterr().out
        saved = bench.result_path(str(tmp_path / 'results'), config, 0, 2)
        assert saved == str(tmp_path / 'results' / osp.splitext(osp.basename(config))[0] / '2it'
                            / 'seed0.json')
        with open(saved) as f:
            run = json.load(f)
        assert run['iters'] == 2 and run['seed'] == 0 and run['batch_size'] == 2
        assert run['config'] == bench.MODELS['PMTSeg'] and run['threads'] == 1
        assert set(run) >= {'all', 'commit', 'command', 'date', 'train_s', 'wall_s'}
        assert set(run) & set(bench.CONDITIONS) == set(conditions)  # one test per condition
        for cond in conditions:
            assert set(run[cond]) >= {'panoptic/PQ', 'semantic/mIoU'}
            assert 'instance/segm_mAP' not in run[cond]  # subsets: panoptic + semantic only
        # the overall row of the table is the run's figures with one decimal
        row = [line for line in first.splitlines() if line.startswith('| tiny |')][0]
        cells = [c.strip() for c in row.strip('|').split('|')][1:]
        assert cells == [f'{run["all"][key]:.1f}' for key in bench.COLUMNS.values()]
        with open(tmp_path / 'work' / 'results.md') as f:
            assert row in f.read()
        # a rerun reads the run file: same table, no training (no new work-dir runs)
        before = sorted(os.listdir(tmp_path / 'work' / 'tiny' / 'seed0'))
        bench.main(argv)
        again = capsys.readouterr().out
        assert sorted(os.listdir(tmp_path / 'work' / 'tiny' / 'seed0')) == before
        assert [ln for ln in again.splitlines() if ln.startswith('| tiny |')][0] == row
    finally:
        torch.set_num_threads(threads)
