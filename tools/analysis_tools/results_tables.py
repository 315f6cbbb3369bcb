"""Regenerate every results table of the documentation from the committed run files.

Run files are the JSONs ``benchmark_synthetic.py`` writes per finished run
(``configs/ablations/results/<config stem>/seed<k>.json``). Two kinds of tables are rewritten:

- **Marked blocks** in any Markdown file of the repository (README.md, docs/, configs/): the
  lines between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` are replaced by the
  table ``NAME`` of :data:`BLOCKS` (the synthetic benchmark of the main models, per condition,
  per class, and the PSH pair). Moving a block to another page moves its markers with it.
- **Ablation tables** of ``configs/ablations/README.md``: in every table whose last column
  header starts with "ours", the last cell of each row is rewritten from the runs of the
  row's config (the first ``*.py`` link of the row; "main config" = the main tiny PMTSeg):
  ``mIoU / AP / PQ`` as mean ± std over seeds, with the seed count, or "–" without runs.
- **Model index** (``configs/*/metafile.yml``): the metric values of every model whose config
  has runs (mean over seeds, as in the tables).

Only runs at the config's own budget (``seed<k>.json`` directly in the config's folder) count.
"±" is the sample standard deviation over seeds (n − 1 in the denominator); differences are
paired by seed (the same seed of both configs). A table never mixes code: the runs it is made
of must share one commit, or commits that differ only in files no run imports (anything but
``pmtseg_mm/`` outside its Python-style config twins, ``configs/**/*.py`` and
``benchmark_synthetic.py``); otherwise the script stops and names the runs.

    python tools/analysis_tools/results_tables.py           # rewrite the files
    python tools/analysis_tools/results_tables.py --check   # exit 1 if a file would change
"""
import argparse
import glob
import json
import os.path as osp
import re
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_synthetic import (CLASS_KEYS, COLUMNS, CONDITION_COLUMNS, CONDITIONS,  # noqa: E402
                                 RESULTS_DIR, TINY)

MAIN = f'pmtseg_{TINY[:-3]}'
#: Rows of the main synthetic benchmark: table name → config stem.
MAIN_MODELS = {
    'PMTSeg': MAIN,
    'PMTSeg w/o PSH (tab4-tmaa-tmsf)': 'pmtseg_r18-tiny_tab4-tmaa-tmsf_synthetic-depth-128x128',
    'Mask2Former-EF': f'mask2former-ef_{TINY[:-3]}',
    'Mask2Former (optical)': f'mask2former-optical_{TINY[:-3]}',
}
CLASSES = ('building', 'tree', 'car', 'road', 'grass', 'water')
PAIR_COLUMNS = ('PQ', 'PQ_th', 'PQ_st', 'AP', 'AP50', 'mIoU')
#: Files a run imports or reads (git pathspecs): runs whose commits differ here are different code.
CODE_PATHSPECS = ('pmtseg_mm', 'configs', 'tools/analysis_tools/benchmark_synthetic.py',
                  ':(exclude)pmtseg_mm/configs', ':(exclude)*.md', ':(exclude)*.yml',
                  ':(exclude)*.json')


def mean_std(values: Sequence[float]) -> str:
    """``mean ± sample std`` (one decimal); the value alone for one run."""
    values = np.asarray(values, dtype=float)
    return (f'{values.mean():.1f} ± {values.std(ddof=1):.1f}' if len(values) > 1 else
            f'{values[0]:.1f}')


def ablation_stem(name: str) -> str:
    """Config stem of an ablation config's short name, e.g. ``'tab4-tmaa'``."""
    return f'pmtseg_r18-tiny_{name}_synthetic-depth-128x128'


def load_runs(results_dir: str, stem: str) -> List[dict]:
    """The committed runs of ``stem`` at its own budget, ordered by seed."""
    runs = []
    for path in glob.glob(osp.join(results_dir, stem, 'seed*.json')):
        with open(path) as f:
            run = json.load(f)
        run['_file'] = osp.relpath(path, results_dir)
        runs.append(run)
    return sorted(runs, key=lambda r: r['seed'])


def _code_differs(a: str, b: str) -> List[str]:
    """Files that a run imports and that differ between commits ``a`` and ``b``."""
    try:
        out = subprocess.run(['git', 'diff', '--name-only', a, b, '--', *CODE_PATHSPECS],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise ValueError(f'cannot compare the code of commits {a[:7]} and {b[:7]} (needs git '
                         f'and both commits in this clone): {err}') from err
    return out.split()


def check_same_code(runs: Sequence[dict], what: str) -> None:
    """Raise ``ValueError`` when the runs of one table were made by different code."""
    commits = sorted({r['commit'] for r in runs})
    if len(commits) < 2:
        return
    by_commit = {c: [r['_file'] for r in runs if r['commit'] == c] for c in commits}
    dirty = [c for c in commits if not re.fullmatch(r'[0-9a-f]{7,40}', c)]
    if dirty:
        raise ValueError(f'{what}: runs made from uncommitted or unknown code ({dirty[0]}: '
                         f'{by_commit[dirty[0]]}) cannot share a table with other commits')
    for other in commits[1:]:
        files = _code_differs(commits[0], other)
        if files:
            raise ValueError(
                f'{what}: runs of different code in one table: {by_commit[commits[0]]} at '
                f'{commits[0][:7]} vs {by_commit[other]} at {other[:7]} (they differ in '
                f'{", ".join(files[:5])}); rerun one side at the other\'s commit')


def provenance(runs: Sequence[dict]) -> str:
    seeds = sorted({r['seed'] for r in runs})
    iters = sorted({r['iters'] for r in runs})
    commits = sorted({r['commit'][:7] + ('+dirty' if r['commit'].endswith('+dirty') else '')
                      for r in runs})
    return (f'seeds {", ".join(map(str, seeds))}; {"/".join(map(str, iters))} iterations; '
            f'commit {", ".join(commits)}')


def _rows(results_dir: str, models: Dict[str, str]) -> Dict[str, List[dict]]:
    return {name: load_runs(results_dir, stem) for name, stem in models.items()}


def _cell(values: Sequence[float]) -> str:
    return mean_std(list(values)) if len(values) else '–'


def table(header: Sequence[str], rows: Dict[str, List[str]]) -> List[str]:
    out = ['| model | ' + ' | '.join(header) + ' |', '|---' * (len(header) + 1) + '|']
    out += [f'| {name} | ' + ' | '.join(cells) + ' |' for name, cells in rows.items()]
    return out


def block_main(results_dir: str) -> List[str]:
    runs = _rows(results_dir, MAIN_MODELS)
    check_same_code([x for r in runs.values() for x in r], 'the main synthetic benchmark')
    rows = {name: [_cell([x['all'][k] for x in r]) for k in COLUMNS.values()] + [str(len(r))]
            for name, r in runs.items()}
    everything = [x for r in runs.values() for x in r]
    note = f'Mean ± sample std over seeds; {provenance(everything)}.' if everything else \
        'No runs yet.'
    return table(list(COLUMNS) + ['seeds'], rows) + ['', note]


def block_conditions(results_dir: str) -> List[str]:
    runs = _rows(results_dir, MAIN_MODELS)
    header = [f'{m} {c}' for c in CONDITIONS for m in CONDITION_COLUMNS]
    rows = {name: [_cell([x[c][k] for x in r if c in x]) for c in CONDITIONS
                   for k in CONDITION_COLUMNS.values()] for name, r in runs.items()}
    return table(header, rows)


def block_classes(results_dir: str) -> List[str]:
    runs = _rows(results_dir, MAIN_MODELS)
    header = [f'{m} {c}' for c in CLASSES for m in CLASS_KEYS]
    rows = {}
    for name, r in runs.items():
        cells = []
        for cls in CLASSES:
            for key in CLASS_KEYS.values():
                values = [x['all'].get(key.format(cls)) for x in r]
                cells.append('–' if not values or None in values else mean_std(values))
        rows[name] = cells
    return table(header, rows)


def block_psh_pair(results_dir: str) -> List[str]:
    """PMTSeg minus PMTSeg w/o PSH, paired by seed."""
    with_psh, without = (load_runs(results_dir, MAIN_MODELS[n]) for n in
                         ('PMTSeg', 'PMTSeg w/o PSH (tab4-tmaa-tmsf)'))
    check_same_code(with_psh + without, 'the PSH pair')
    other = {r['seed']: r for r in without}
    pairs = [(r, other[r['seed']]) for r in with_psh if r['seed'] in other]
    rows = {}
    for a, b in pairs:
        rows[f'seed {a["seed"]}'] = [f'{a["all"][COLUMNS[k]] - b["all"][COLUMNS[k]]:+.1f}'
                                     for k in PAIR_COLUMNS]
    diffs = {k: [a['all'][COLUMNS[k]] - b['all'][COLUMNS[k]] for a, b in pairs]
             for k in PAIR_COLUMNS}
    rows['mean ± std'] = [
        (f'{np.mean(v):+.1f} ± {np.std(v, ddof=1):.1f}' if len(v) > 1 else
         f'{v[0]:+.1f}' if v else '–') for v in diffs.values()]
    lines = table([f'Δ{k}' for k in PAIR_COLUMNS], rows)
    lines[0] = lines[0].replace('| model |', '| PMTSeg − w/o PSH |', 1)
    return lines


#: Order of the ablation rows in the generated tables (prefix of the short name).
ABLATION_ORDER = ('tab4', 'tab5', 'tab6', 'tab7', 'tab8', 'tab9', 'tab10', 'tab11', 'lcon',
                  'fig6', 'tmaa', 'cost')


def ablation_names(root: str = ROOT) -> List[str]:
    """Short names of the ablation configs (``configs/ablations/*.py``), in table order."""
    names = [osp.basename(p)[len('pmtseg_r18-tiny_'):-len('_synthetic-depth-128x128.py')]
             for p in glob.glob(osp.join(root, 'configs', 'ablations', 'pmtseg_r18-tiny_*.py'))]
    rank = {prefix: i for i, prefix in enumerate(ABLATION_ORDER)}
    return sorted(names, key=lambda n: (rank.get(n.split('-')[0], len(rank)), n))


def paired(a: Sequence[dict], b: Sequence[dict], metric: str) -> List[float]:
    """``a − b`` on ``metric`` (a key of COLUMNS) for every seed both have."""
    other = {r['seed']: r for r in b}
    return [r['all'][COLUMNS[metric]] - other[r['seed']]['all'][COLUMNS[metric]]
            for r in a if r['seed'] in other]


def diff_cell(diffs: Sequence[float]) -> str:
    if not diffs:
        return '–'
    if len(diffs) == 1:
        return f'{diffs[0]:+.1f} (1)'
    return f'{np.mean(diffs):+.1f} ± {np.std(diffs, ddof=1):.1f} ({len(diffs)})'


def _ablation_runs(results_dir: str) -> Dict[str, List[dict]]:
    runs = {'main config': load_runs(results_dir, MAIN)}
    runs.update({name: load_runs(results_dir, ablation_stem(name)) for name in ablation_names()})
    check_same_code([x for r in runs.values() for x in r], 'the ablation tables')
    return runs


def block_ablation_metrics(results_dir: str) -> List[str]:
    """Every ablation config: mean ± std of the six headline metrics and the seed count."""
    rows = {name: [_cell([x['all'][COLUMNS[k]] for x in r]) for k in PAIR_COLUMNS] +
            [str(len(r))] for name, r in _ablation_runs(results_dir).items()}
    lines = table(list(PAIR_COLUMNS) + ['seeds'], rows)
    lines[0] = lines[0].replace('| model |', '| config |', 1)
    return lines


def block_ablation_paired(results_dir: str) -> List[str]:
    """Every ablation config minus the main config, paired by seed (pair count in brackets)."""
    runs = _ablation_runs(results_dir)
    main = runs.pop('main config')
    rows = {name: [diff_cell(paired(r, main, k)) for k in PAIR_COLUMNS] for name, r in runs.items()}
    lines = table([f'Δ{k}' for k in PAIR_COLUMNS], rows)
    lines[0] = lines[0].replace('| model |', '| config − main config |', 1)
    return lines


#: The paper's ablation claims (sec. IV-E): ``(claim, table, better, worse)`` says "better > worse";
#: ``(claim, table, choice, (others...))`` says "choice is best among choice and others".
#: Short names are ablation configs; 'main' is the main config (the full PMTSeg).
CLAIMS = (
    ('+TMAA helps', 'IV', 'tab4-tmaa', 'tab4-baseline'),
    ('+TMSF helps', 'IV', 'tab4-tmsf', 'tab4-baseline'),
    ('+PSH helps', 'IV', 'tab4-psh', 'tab4-baseline'),
    ('PSH helps on TMAA + TMSF', 'IV', 'main', 'tab4-tmaa-tmsf'),
    ('the full model is best', 'IV', 'main',
     ('tab4-baseline', 'tab4-tmaa', 'tab4-tmsf', 'tab4-tmaa-tmsf', 'tab4-psh', 'tab4-psh-tmaa',
      'tab4-psh-tmsf')),
    ('unified head > separate heads', 'V', 'main', 'tab5-separate-heads'),
    ('JS > KL and ED', 'VI', 'main', ('tab6-tmaa-kl', 'tab6-tmaa-ed')),
    ('one TMSF layer > two, three', 'VII', 'main', ('tab7-tmsf-2layers', 'tab7-tmsf-3layers')),
    ('both modalities > optical only', 'VIII', 'main', 'tab8-optical-only'),
    ('optical only > auxiliary only', 'VIII', 'tab8-optical-only', 'tab8-depth-only'),
    ('four scales > fewer', 'IX', 'main',
     ('tab9-scales-4', 'tab9-scales-4-8', 'tab9-scales-4-8-16')),
    ('L_CON helps', 'X', 'main', 'tab10-no-lcon'),
    ('PSH > LV', 'XI', 'main', 'tab11-lv'),
    ('PSH > NT', 'XI', 'main', 'tab11-nt'),
    ('α = 5 is best', 'Fig. 6', 'main',
     ('fig6-alpha1', 'fig6-alpha3', 'fig6-alpha7', 'fig6-alpha10')),
)
#: Metric a verdict is decided on; the others are reported beside it.
VERDICT_METRIC = 'PQ'
BESIDE = ('mIoU', 'AP')


def margin_sign(diffs: Sequence[float]) -> Optional[int]:
    """+1 / −1 when the paired mean exceeds twice the paired sample std with that sign, 0 when
    it does not, None with fewer than two pairs."""
    if len(diffs) < 2:
        return None
    mean, std = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
    return 0 if abs(mean) <= 2 * std else int(np.sign(mean))


def runs_of(results_dir: str, name: str) -> List[dict]:
    """Runs of an ablation config's short name, or of the main config for ``'main'``."""
    return load_runs(results_dir, MAIN if name == 'main' else ablation_stem(name))


def verdict(results_dir: str, better: str, worse) -> List[str]:
    """Cells of one claim: comparison, Δ of the verdict metric and beside it, verdict."""
    choice = runs_of(results_dir, better)
    others = [worse] if isinstance(worse, str) else list(worse)
    diffs = {o: paired(choice, runs_of(results_dir, o), VERDICT_METRIC) for o in others}
    signs = {o: margin_sign(d) for o, d in diffs.items()}
    # the closest competitor: the smallest paired mean (unknown rows first)
    closest = min(others, key=lambda o: np.mean(diffs[o]) if diffs[o] else -np.inf)
    other_runs = runs_of(results_dir, closest)
    cells = [f'{better} − {closest}'] + [
        diff_cell(paired(choice, other_runs, m)) for m in (VERDICT_METRIC, ) + BESIDE]
    if any(sign is None for sign in signs.values()):
        result = 'not run yet (< 2 paired seeds)'
    elif all(sign == 1 for sign in signs.values()):
        result = '**reproduced**'
    elif any(sign == -1 for sign in signs.values()):
        result = '**not reproduced**'
    else:
        result = 'inconclusive'
    return cells + [result]


def block_verdicts(results_dir: str) -> List[str]:
    """One row per claim of :data:`CLAIMS` with its verdict (rule: configs/ablations/README)."""
    _ablation_runs(results_dir)  # refuses runs of different code
    rows = {f'{claim} ({tab})': verdict(results_dir, better, worse)
            for claim, tab, better, worse in CLAIMS}
    lines = table(['comparison (closest row)', f'Δ{VERDICT_METRIC}'] +
                  [f'Δ{m}' for m in BESIDE] + ['verdict'], rows)
    lines[0] = lines[0].replace('| model |', '| paper\'s claim (table) |', 1)
    return lines


#: Follow-ups (issue 22 item 4): ``(claim, follow-up config, rows it is paired with)``, one
#: experiment on the likeliest cause of a claim the grid does not reproduce.
FOLLOW_UPS = (
    ('+PSH helps (IV)', 'psh-panoptic-only', ('main', 'tab4-tmaa-tmsf')),
    ('the full model is best (IV)', 'psh-panoptic-only', ('tab4-tmsf', )),
)
DIRECTION = {None: 'not run yet (< 2 paired seeds)', 1: 'higher', -1: 'lower', 0: 'within noise'}


def block_followups(results_dir: str) -> List[str]:
    """Each follow-up config minus the rows it explains, paired; the PQ difference's direction
    by the verdict rule's margin (twice the paired std)."""
    _ablation_runs(results_dir)  # refuses runs of different code
    rows = {}
    for claim, name, others in FOLLOW_UPS:
        runs = runs_of(results_dir, name)
        for other in others:
            diffs = [paired(runs, runs_of(results_dir, other), m)
                     for m in (VERDICT_METRIC, ) + BESIDE]
            rows[f'{claim}: {name} − {other}'] = [diff_cell(d) for d in diffs] + [
                DIRECTION[margin_sign(diffs[0])]]
    lines = table([f'Δ{VERDICT_METRIC}'] + [f'Δ{m}' for m in BESIDE] +
                  [f'{VERDICT_METRIC} is'], rows)
    lines[0] = lines[0].replace('| model |', '| claim: follow-up − row |', 1)
    return lines


#: Marked blocks: name → generator(results_dir) → lines.
BLOCKS: Dict[str, Callable[[str], List[str]]] = {
    'synthetic-main': block_main,
    'synthetic-conditions': block_conditions,
    'synthetic-classes': block_classes,
    'psh-pair': block_psh_pair,
    'ablation-metrics': block_ablation_metrics,
    'ablation-paired': block_ablation_paired,
    'ablation-verdicts': block_verdicts,
    'ablation-followups': block_followups,
}
BLOCK_RE = re.compile(r'(<!-- results:([\w-]+) -->\n)(.*?)(<!-- /results:\2 -->)', re.S)
LINK_RE = re.compile(r'\]\(([^)]*?([^/)]+)\.py)\)')


def ours_cell(results_dir: str, stem: str) -> str:
    runs = load_runs(results_dir, stem)
    if not runs:
        return '–'
    keys = (COLUMNS['mIoU'], COLUMNS['AP'], COLUMNS['PQ'])
    return ' / '.join(mean_std([r['all'][k] for r in runs]) for k in keys) + f' ({len(runs)})'


def rewrite_ablation_tables(text: str, results_dir: str) -> str:
    """Rewrite the last cell of every row of the tables whose last header is "ours ..."."""
    out, ours, table_runs, heading = [], False, [], ''
    lines = text.split('\n')
    for i, line in enumerate(lines + ['']):
        if not line.startswith('|'):
            if ours:
                check_same_code(table_runs, f'configs/ablations/README.md, {heading!r}')
            ours, table_runs = False, []
            heading = line.lstrip('# ') if line.startswith('#') else heading
        elif not line.startswith('|---'):
            cells = line.strip().strip('|').split('|')
            following = lines[i + 1] if i + 1 < len(lines) else ''
            if following.startswith('|---'):  # a header row
                ours = cells[-1].strip().startswith('ours')
            elif ours:
                first = cells[0].strip()
                link = LINK_RE.search(first)
                stem = MAIN if first.startswith('main config') else (
                    link.group(2) if link else None)
                if stem is not None:
                    table_runs += load_runs(results_dir, stem)
                    cells[-1] = ' ' + ours_cell(results_dir, stem) + ' '
                    line = '|' + '|'.join(cells) + '|'
        out.append(line)
    return '\n'.join(out[:-1])


METRIC_LINE = re.compile(r'^(\s+)(\w+): ([-\d.]+)$')


def rewrite_metafile(text: str, results_dir: str) -> str:
    """Metric values of every metafile model whose config has runs: the mean over seeds."""
    out, runs = [], []
    for line in text.split('\n'):
        name = re.match(r'^- Name: (\S+)$', line)
        if name:
            runs = load_runs(results_dir, name.group(1))
        metric = METRIC_LINE.match(line)
        if runs and metric and metric.group(2) in COLUMNS:
            mean = np.mean([r['all'][COLUMNS[metric.group(2)]] for r in runs])
            line = f'{metric.group(1)}{metric.group(2)}: {mean:.1f}'
        out.append(line)
    return '\n'.join(out)


def render(path: str, text: str, results_dir: str) -> str:
    """``text`` of ``path`` with its results regenerated."""
    def block(match: 're.Match') -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise ValueError(f'{path}: unknown results block {name!r}; known: {sorted(BLOCKS)}')
        return match.group(1) + '\n'.join(BLOCKS[name](results_dir)) + '\n' + match.group(4)

    if path.endswith('metafile.yml'):
        return rewrite_metafile(text, results_dir)
    text = BLOCK_RE.sub(block, text)
    if osp.normpath(path).endswith(osp.join('configs', 'ablations', 'README.md')):
        text = rewrite_ablation_tables(text, results_dir)
    return text


def markdown_files(root: str) -> List[str]:
    return sorted([osp.join(root, 'README.md')] + glob.glob(osp.join(root, 'docs', '*.md')) +
                  glob.glob(osp.join(root, 'configs', '**', '*.md'), recursive=True) +
                  glob.glob(osp.join(root, 'configs', '*', 'metafile.yml')))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--results-dir', default=osp.join(ROOT, RESULTS_DIR))
    parser.add_argument('--root', default=ROOT, help='repository root to rewrite')
    parser.add_argument('--check', action='store_true',
                        help='write nothing; exit 1 if a file is not what the runs give')
    args = parser.parse_args(argv)
    stale = []
    for path in markdown_files(args.root):
        if not osp.isfile(path):
            continue
        with open(path, encoding='utf-8') as f:
            text = f.read()
        new = render(path, text, args.results_dir)
        if new == text:
            continue
        stale.append(osp.relpath(path, args.root))
        if not args.check:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(new)
    verb = 'out of date' if args.check else 'rewritten'
    print(f'results_tables: {len(stale)} file(s) {verb}' +
          (': ' + ', '.join(stale) if stale else ''))
    return 1 if args.check and stale else 0


if __name__ == '__main__':
    sys.exit(main())
