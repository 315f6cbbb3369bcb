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

    python tools/analysis_tools/results_tables.py           # rewrite the files
    python tools/analysis_tools/results_tables.py --check   # exit 1 if a file would change
"""
import argparse
import glob
import json
import os.path as osp
import re
import sys
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_synthetic import (CLASS_KEYS, COLUMNS, CONDITION_COLUMNS, CONDITIONS,  # noqa: E402
                                 RESULTS_DIR, TINY, mean_std)

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


def load_runs(results_dir: str, stem: str) -> List[dict]:
    """The committed runs of ``stem`` at its own budget, ordered by seed."""
    runs = []
    for path in glob.glob(osp.join(results_dir, stem, 'seed*.json')):
        with open(path) as f:
            runs.append(json.load(f))
    return sorted(runs, key=lambda r: r['seed'])


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
    rows = {name: [_cell([x['all'][k] for x in r]) for k in COLUMNS.values()] + [str(len(r))]
            for name, r in runs.items()}
    everything = [x for r in runs.values() for x in r]
    return table(list(COLUMNS) + ['seeds'], rows) + [
        '', f'Mean ± std over seeds; {provenance(everything)}.' if everything else 'No runs yet.']


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
    other = {r['seed']: r for r in without}
    pairs = [(r, other[r['seed']]) for r in with_psh if r['seed'] in other]
    rows = {}
    for a, b in pairs:
        rows[f'seed {a["seed"]}'] = [f'{a["all"][COLUMNS[k]] - b["all"][COLUMNS[k]]:+.1f}'
                                     for k in PAIR_COLUMNS]
    diffs = {k: [a['all'][COLUMNS[k]] - b['all'][COLUMNS[k]] for a, b in pairs]
             for k in PAIR_COLUMNS}
    rows['mean ± std'] = [
        (f'{np.mean(v):+.1f} ± {np.std(v):.1f}' if v else '–') for v in diffs.values()]
    lines = table([f'Δ{k}' for k in PAIR_COLUMNS], rows)
    lines[0] = lines[0].replace('| model |', '| PMTSeg − w/o PSH |', 1)
    return lines


#: Marked blocks: name → generator(results_dir) → lines.
BLOCKS: Dict[str, Callable[[str], List[str]]] = {
    'synthetic-main': block_main,
    'synthetic-conditions': block_conditions,
    'synthetic-classes': block_classes,
    'psh-pair': block_psh_pair,
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
    out, ours = [], False
    lines = text.split('\n')
    for i, line in enumerate(lines):
        if not line.startswith('|'):
            ours = False
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
                    cells[-1] = ' ' + ours_cell(results_dir, stem) + ' '
                    line = '|' + '|'.join(cells) + '|'
        out.append(line)
    return '\n'.join(out)


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
    print(f'results_tables: {len(stale)} file(s) {verb}' + (': ' + ', '.join(stale) if stale else ''))
    return 1 if args.check and stale else 0


if __name__ == '__main__':
    sys.exit(main())
