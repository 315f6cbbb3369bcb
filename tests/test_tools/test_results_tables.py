"""tools/analysis_tools/results_tables.py: the committed docs are what the committed runs give,
and the tables are computed as written."""
import importlib.util
import json
import os
import os.path as osp
import shutil
import subprocess

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
    # PQ is the first metric (40, 50), PQ_th the second (41, 51): mean ± sample std (√50 = 7.07)
    assert '| PMTSeg | 45.0 ± 7.1 | 46.0 ± 7.1 |' in readme
    assert readme.count('| – | – |') >= 2  # the baselines have no runs
    assert 'seeds 0, 1; 1000 iterations; commit abc1234.' in readme
    # paired by seed: only seed 1 has both (50 - 44)
    assert '| seed 1 | +6.0 |' in readme and '| seed 0 |' not in readme
    assert '| mean ± std | +6.0 |' in readme  # one pair: no spread
    ablations = open(osp.join(root, 'configs', 'ablations', 'README.md')).read()
    # mIoU / AP / PQ of the main config's rows; the w/o-PSH config's row in Table IV
    main_cell = (f'{45 + 8:.1f} ± 7.1 / {45 + 5:.1f} ± 7.1 / 45.0 ± 7.1 (2)')
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


def test_margin_rule_by_hand():
    """Paired mean against twice the paired sample std: [3, 4, 5] has mean 4, std 1 → +1;
    [1, 2, 6] mean 3, std 2.65 → 0; [-3, -4, -5] → −1; one pair decides nothing."""
    assert tables.margin_sign([3.0, 4.0, 5.0]) == 1
    assert tables.margin_sign([1.0, 2.0, 6.0]) == 0
    assert tables.margin_sign([-3.0, -4.0, -5.0]) == -1
    assert tables.margin_sign([2.0, 2.0]) == 1  # no spread at all: any gap is beyond it
    assert tables.margin_sign([9.0]) is None


def test_verdicts_and_paired_tables(tmp_path):
    """Pairwise, best-of-k and too-few-seeds verdicts; the paired table by hand."""
    results = str(tmp_path)
    main_pq = {0: 50.0, 1: 52.0, 2: 51.0}
    for seed, pq in main_pq.items():
        write_run(results, tables.MAIN, seed, pq)
        # +TMAA vs baseline: 4, 5, 6 PQ above → reproduced
        write_run(results, tables.ablation_stem('tab4-baseline'), seed, pq - 10.0)
        write_run(results, tables.ablation_stem('tab4-tmaa'), seed, pq - 5.0 + seed)
        # L_CON: the model without it is better by 3 on every seed → not reproduced
        write_run(results, tables.ablation_stem('tab10-no-lcon'), seed, pq + 3.0)
        # VI: KL far behind, ED within noise (diffs 1, -1, 2) → inconclusive
        write_run(results, tables.ablation_stem('tab6-tmaa-kl'), seed, pq - 8.0)
        write_run(results, tables.ablation_stem('tab6-tmaa-ed'), seed, pq - [1, -1, 2][seed])
    write_run(results, tables.ablation_stem('tab11-lv'), 0, 10.0)  # one seed only
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
            for line in tables.block_verdicts(results)[2:]}
    assert rows['+TMAA helps (IV)'] == [
        'tab4-tmaa − tab4-baseline', '+6.0 ± 1.0 (3)', '+6.0 ± 1.0 (3)', '+6.0 ± 1.0 (3)',
        '**reproduced**']
    assert rows['L_CON helps (X)'][1:] == ['-3.0 ± 0.0 (3)'] * 3 + ['**not reproduced**']
    # the closest competitor of JS is ED: +0.7 ± 1.5 → inconclusive although KL is far behind
    assert rows['JS > KL and ED (VI)'][0] == 'main − tab6-tmaa-ed'
    assert rows['JS > KL and ED (VI)'][1] == '+0.7 ± 1.5 (3)'
    assert rows['JS > KL and ED (VI)'][-1] == 'inconclusive'
    assert rows['PSH > LV (XI)'][-1] == 'not run yet (< 2 paired seeds)'
    assert len(rows) == len(tables.CLAIMS) >= 10
    paired = {line.split('|')[1].strip(): line.split('|')[2].strip()
              for line in tables.block_ablation_paired(results)[2:]}
    assert paired['tab4-tmaa'] == '-4.0 ± 1.0 (3)' and paired['tab11-lv'] == '-40.0 (1)'
    assert paired['tab9-scales-4'] == '–'
    metrics = tables.block_ablation_metrics(results)
    assert '| main config | 51.0 ± 1.0 |' in metrics[2] and metrics[2].endswith('| 3 |')


def test_followups_by_hand(tmp_path):
    """Each follow-up row pairs the follow-up config with the rows it explains, seed by seed:
    PQ gaps 3, 3.5, 2.5 → +3.0 ± 0.5, higher; gaps 1, -1 → +0.0 ± 1.4, within noise; one seed
    → not run yet."""
    results = str(tmp_path)
    follow = tables.ablation_stem('psh-panoptic-only')
    for seed, pq in enumerate([50.0, 52.0, 51.0]):
        write_run(results, follow, seed, pq)
        write_run(results, tables.MAIN, seed, pq - [3.0, 3.5, 2.5][seed])
        if seed < 2:
            write_run(results, tables.ablation_stem('tab4-tmaa-tmsf'), seed, pq - [1, -1][seed])
    write_run(results, tables.ablation_stem('tab4-tmsf'), 0, 40.0)
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
            for line in tables.block_followups(results)[2:]}
    assert rows['+PSH helps (IV): psh-panoptic-only − main'] == [
        '+3.0 ± 0.5 (3)'] * 3 + ['higher']
    assert rows['+PSH helps (IV): psh-panoptic-only − tab4-tmaa-tmsf'] == [
        '+0.0 ± 1.4 (2)'] * 3 + ['within noise']
    assert rows['the full model is best (IV): psh-panoptic-only − tab4-tmsf'][-1] == (
        'not run yet (< 2 paired seeds)')
    assert len(rows) == sum(len(others) for _, _, others in tables.FOLLOW_UPS)


def _git(repo, *args):
    subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *args], cwd=repo,
                   check=True, capture_output=True)
    if args[0] != 'commit':
        return None
    return subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_runs_of_different_code_are_refused(tmp_path, monkeypatch):
    """Commits differing only in docs or run files share a table; a change in pmtseg_mm/ or in a
    config does not; uncommitted code never shares one."""
    repo = tmp_path / 'repo'
    (repo / 'pmtseg_mm').mkdir(parents=True)
    (repo / 'pmtseg_mm' / 'model.py').write_text('a = 1\n')
    (repo / 'README.md').write_text('x\n')
    _git(repo, 'init', '-q')
    _git(repo, 'add', '.')
    first = _git(repo, 'commit', '-qm', 'code')
    (repo / 'README.md').write_text('y\n')
    (repo / 'configs' / 'ablations' / 'results').mkdir(parents=True)
    (repo / 'configs' / 'ablations' / 'results' / 'seed0.json').write_text('{}')
    _git(repo, 'add', '.')
    docs_only = _git(repo, 'commit', '-qm', 'docs and a run file')
    (repo / 'pmtseg_mm' / 'model.py').write_text('a = 2\n')
    code_change = _git(repo, 'commit', '-qam', 'code change')
    monkeypatch.setattr(tables, 'ROOT', str(repo))

    def runs(*commits):
        return [dict(commit=c, _file=f'x/seed{i}.json') for i, c in enumerate(commits)]

    tables.check_same_code(runs(first, docs_only, first), 'table')
    with pytest.raises(ValueError, match=r"table: runs of different code .*pmtseg_mm/model.py"):
        tables.check_same_code(runs(first, code_change), 'table')
    with pytest.raises(ValueError, match='uncommitted'):
        tables.check_same_code(runs(first, first + '+dirty'), 'table')
    with pytest.raises(ValueError, match='cannot compare'):
        tables.check_same_code(runs(first, '0' * 40), 'table')
