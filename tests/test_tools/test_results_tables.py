"""tools/analysis_tools/results_tables.py: the committed docs are what the committed runs give,
and the tables are computed as written."""
import importlib.util
import json
import os
import os.path as osp
import shutil

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'results_tables', osp.join(ROOT, 'tools', 'analysis_tools', 'results_tables.py'))
tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tables)


def test_committed_docs_are_what_the_committed_runs_give(capsys):
    """Regenerating every table from configs/ablations/results/ changes no file."""
    assert tables.main(['--check']) == 0, capsys.readouterr().out


def write_run(results_dir, stem, seed, value, commit='abc1234def'):
    metrics = {key: value + i for i, key in enumerate(tables.COLUMNS.values())}
    metrics['panoptic/building_PQ'] = value
    run = {'all': metrics, 'seed': seed, 'iters': 1000, 'commit': commit,
           **{c: {k: value for k in tables.CONDITION_COLUMNS.values()} for c in tables.CONDITIONS}}
    os.makedirs(osp.join(results_dir, stem), exist_ok=True)
    with open(osp.join(results_dir, stem, f'seed{seed}.json'), 'w') as f:
        json.dump(run, f)


@pytest.fixture
def tree(tmp_path):
    """A repository copy with two PMTSeg runs (PQ 40 and 50) and one w/o-PSH run (PQ 44)."""
    root = tmp_path / 'repo'
    os.makedirs(root / 'configs' / 'ablations')
    os.makedirs(root / 'configs' / 'pmtseg')
    shutil.copy(osp.join(ROOT, 'configs', 'ablations', 'README.md'),
                root / 'configs' / 'ablations' / 'README.md')
    (root / 'README.md').write_text(
        'intro\n<!-- results:synthetic-main -->\nstale\n<!-- /results:synthetic-main -->\n'
        '<!-- results:psh-pair -->\n<!-- /results:psh-pair -->\nend\n')
    (root / 'configs' / 'pmtseg' / 'metafile.yml').write_text(
        f'Models:\n- Name: {tables.MAIN}\n  Results:\n  - Metrics:\n      PQ: 1.0\n'
        '      AP50: 2.0\n- Name: other\n  Results:\n  - Metrics:\n      PQ: 3.0\n')
    results = str(tmp_path / 'results')
    write_run(results, tables.MAIN, 0, 40.0)
    write_run(results, tables.MAIN, 1, 50.0)
    write_run(results, tables.MAIN_MODELS['PMTSeg w/o PSH (tab4-tmaa-tmsf)'], 1, 44.0)
    return str(root), results


def test_tables_from_runs(tree, capsys):
    root, results = tree
    argv = ['--root', root, '--results-dir', results]
    assert tables.main(argv + ['--check']) == 1  # the files are stale
    assert tables.main(argv) == 0
    assert tables.main(argv + ['--check']) == 0  # and now they are not
    readme = open(osp.join(root, 'README.md')).read()
    assert 'stale' not in readme and readme.startswith('intro\n') and readme.endswith('end\n')
    # PQ is the first metric (40, 50), PQ_th the second (41, 51): mean ± population std
    assert '| PMTSeg | 45.0 ± 5.0 | 46.0 ± 5.0 |' in readme
    assert readme.count('| – | – |') >= 2  # the baselines have no runs
    assert 'seeds 0, 1; 1000 iterations; commit abc1234.' in readme
    # paired by seed: only seed 1 has both (50 - 44)
    assert '| seed 1 | +6.0 |' in readme and '| seed 0 |' not in readme
    assert '| mean ± std | +6.0 ± 0.0 |' in readme
    ablations = open(osp.join(root, 'configs', 'ablations', 'README.md')).read()
    # mIoU / AP / PQ of the main config's rows; the w/o-PSH config's row in Table IV
    main_cell = (f'{45 + 8:.1f} ± 5.0 / {45 + 5:.1f} ± 5.0 / 45.0 ± 5.0 (2)')
    assert f'| main config (PMTSeg) | ✓ | ✓ | ✓ | 65.0 / 40.3 / 46.7 | {main_cell} |' in ablations
    assert '| 61.3 / 39.6 / 42.2 | 52.0 / 49.0 / 44.0 (1) |' in ablations
    assert '| 59.1 / 37.1 / 34.9 | – |' in ablations  # a row without runs
    meta = open(osp.join(root, 'configs', 'pmtseg', 'metafile.yml')).read()
    assert '      PQ: 45.0\n      AP50: 51.0\n' in meta and '      PQ: 3.0\n' in meta


def test_unknown_block_is_an_error(tmp_path):
    root = tmp_path / 'repo'
    root.mkdir()
    (root / 'README.md').write_text('<!-- results:nope -->\n<!-- /results:nope -->\n')
    with pytest.raises(ValueError, match="unknown results block 'nope'"):
        tables.main(['--root', str(root), '--results-dir', str(tmp_path)])
