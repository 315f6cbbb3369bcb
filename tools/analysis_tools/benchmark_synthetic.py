"""Learning benchmark on the embedded synthetic dataset: any list of configs, same budget, seeds.

One command generates the dataset, trains every config with the same small CPU budget,
evaluates all three tasks on the val split (all images, then per optical condition: clear, dark,
fog) and repeats over seeds; it prints mean ± std tables (overall, per condition, per class).
By default it compares PMTSeg, Mask2Former-EF and optical-only Mask2Former (the tiny configs);
``--configs`` runs any others the same way (the ablations in ``configs/ablations/``).

    python tools/analysis_tools/benchmark_synthetic.py --work-dir work_dirs/benchmark \
        --iters 1000 --seeds 0 1 2 --jobs 2
    python tools/analysis_tools/benchmark_synthetic.py --seeds 0 \
        --configs configs/ablations/pmtseg_r18-tiny_tab4-*.py

``--test-twins`` also tests every checkpoint with the config's ``<stem>_test-<tag>.py`` siblings
(e.g. ``..._test-optical-only.py``: the depth declared missing), reported as rows ``NAME [tag]``:

    python tools/analysis_tools/benchmark_synthetic.py --test-twins --names \
        'PMTSeg + dropout' PMTSeg 'Mask2Former (optical)' --configs \
        configs/pmtseg/pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128.py \
        configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py \
        configs/baselines/mask2former-optical_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py

``--jobs 2`` trains two runs side by side with one thread each (on 2 cores that is ~1.7x the
throughput of one run with two threads). Results go to ``WORK_DIR/results.{json,md}``.

Every finished run also writes a small JSON, ``RESULTS_DIR/<config stem>/seed<k>.json`` (default
``configs/ablations/results``; ``<stem>/<iters>it/seed<k>.json`` when ``--iters`` differs from the
config's budget): all metrics (overall, per class, per condition), iterations, seed, config, the
commit and the command. Commit these files (never the checkpoints): a run whose JSON exists is
not trained again, so a benchmark or ablation grid resumes across sessions.
``tools/analysis_tools/results_tables.py`` regenerates the results tables of the READMEs from them.
"""
import argparse
import datetime
import glob
import json
import os
import os.path as osp
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = 'r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
MODELS = {
    'PMTSeg': f'configs/pmtseg/pmtseg_{TINY}',
    'Mask2Former-EF': f'configs/baselines/mask2former-ef_{TINY}',
    'Mask2Former (optical)': f'configs/baselines/mask2former-optical_{TINY}',
}
COLUMNS = {
    'PQ': 'panoptic/PQ', 'PQ_th': 'panoptic/PQ_th', 'PQ_st': 'panoptic/PQ_st',
    'SQ': 'panoptic/SQ', 'RQ': 'panoptic/RQ', 'AP': 'instance/segm_mAP',
    'AP50': 'instance/segm_mAP_50', 'AP75': 'instance/segm_mAP_75', 'mIoU': 'semantic/mIoU',
    'mAcc': 'semantic/mAcc', 'OA': 'semantic/OA'
}
CONDITIONS = ('clear', 'dark', 'fog')
#: Committed run files, relative to the repository root.
RESULTS_DIR = 'configs/ablations/results'
CONDITION_COLUMNS = {'PQ': 'panoptic/PQ', 'mIoU': 'semantic/mIoU'}
# per-class keys of the metrics (MultiTask* metrics, classwise)
CLASS_KEYS = {'PQ': 'panoptic/{}_PQ', 'IoU': 'semantic/{}_IoU', 'AP': 'instance/segm_{}_AP'}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--configs', nargs='+', help='configs to compare (default: PMTSeg, '
                        'Mask2Former-EF, optical-only Mask2Former, tiny)')
    parser.add_argument('--names', nargs='+', help='table names of --configs (default: stems)')
    parser.add_argument('--work-dir', default='work_dirs/benchmark_synthetic')
    parser.add_argument('--results-dir', default=osp.join(ROOT, RESULTS_DIR),
                        help='where each finished run writes <config stem>/seed<k>.json (and '
                        'where finished runs are looked up)')
    parser.add_argument('--data-root', default='data/synthetic_depth')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--data-seed', type=int, default=0)
    parser.add_argument('--iters', type=int, help='training iterations (default: the configs\')')
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--jobs', type=int, default=1,
                        help='runs trained side by side (threads are split between them)')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads in all')
    parser.add_argument('--test-twins', action='store_true',
                        help="also test each checkpoint with the config's <stem>_test-<tag>.py "
                        'siblings (rows "NAME [tag]")')
    args = parser.parse_args(argv)
    if args.configs is None:
        args.configs = [osp.join(ROOT, config) for config in MODELS.values()]
        args.names = args.names or list(MODELS)
    elif args.names is None:
        args.names = [osp.splitext(osp.basename(c))[0] for c in args.configs]
    if len(args.names) != len(args.configs) or len(set(args.names)) != len(args.names):
        parser.error(f'--names must give one distinct name per config, got {args.names}')
    for config in args.configs:
        if not osp.isfile(config):
            parser.error(f'config file {config!r} does not exist')
    if args.jobs < 1 or args.threads < 1:
        parser.error('--jobs and --threads must be >= 1')
    return args


def condition_subsets(data_root: str) -> Dict[str, Tuple[str, int]]:
    """Write ``annotations/{panoptic,instances}_val_<condition>.json`` (val images of one optical
    condition) and return ``{condition: (panoptic json name, number of images)}``."""
    from pmtseg_mm.datasets.coco_format import atomic_write_json
    ann_dir = osp.join(data_root, 'annotations')
    subsets = {}
    for kind in ('panoptic', 'instances'):
        with open(osp.join(ann_dir, f'{kind}_val.json')) as f:
            full = json.load(f)
        for cond in CONDITIONS:
            ids = {img['id'] for img in full['images'] if img.get('condition') == cond}
            if not ids:
                continue
            subset = dict(full, images=[i for i in full['images'] if i['id'] in ids],
                          annotations=[a for a in full['annotations'] if a['image_id'] in ids])
            name = f'{kind}_val_{cond}.json'
            atomic_write_json(osp.join(ann_dir, name), subset)
            subsets.setdefault(cond, (f'panoptic_val_{cond}.json', len(ids)))
    return subsets


def build_cfg(config: str, args: argparse.Namespace, seed: int, work_dir: str):
    """The config with this benchmark's data root, batch size, budget and seed."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    root = args.data_root.rstrip('/') + '/'
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = root
        cfg[loader].num_workers = 1
        cfg[loader].persistent_workers = True
    cfg.train_dataloader.batch_size = args.batch_size
    for evaluator in cfg.test_evaluator:
        if 'ann_file' in evaluator:
            evaluator.ann_file = root + 'annotations/' + osp.basename(evaluator.ann_file)
        if 'seg_prefix' in evaluator:
            evaluator.seg_prefix = root + 'annotations/panoptic_val/'
    if args.iters is not None:  # scale the configs' milestones to the new budget
        old = cfg.train_cfg.max_iters
        schedulers = cfg.param_scheduler
        for sched in schedulers if isinstance(schedulers, list) else [schedulers]:
            if 'milestones' in sched:
                sched.milestones = [round(m * args.iters / old) for m in sched.milestones]
            sched.end = args.iters
        cfg.train_cfg.max_iters = args.iters
    iters = cfg.train_cfg.max_iters
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None  # tested once, after training
    cfg.train_cfg.pop('val_interval', None)
    cfg.default_hooks.checkpoint.interval = iters
    cfg.default_hooks.checkpoint.max_keep_ckpts = 1
    cfg.default_hooks.logger.interval = 50
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = work_dir
    return cfg


def config_budget(config: str) -> int:
    """Training iterations of ``config`` as written."""
    from mmengine.config import Config
    return int(Config.fromfile(config).train_cfg.max_iters)


def result_path(results_dir: str, config: str, seed: int, iters: Optional[int] = None) -> str:
    """``<results_dir>/<config stem>/seed<k>.json`` (``<stem>/<iters>it/seed<k>.json`` for a
    budget other than the config's own)."""
    stem = osp.splitext(osp.basename(config))[0]
    folder = osp.join(results_dir, stem)
    if iters is not None and iters != config_budget(config):
        folder = osp.join(folder, f'{iters}it')
    return osp.join(folder, f'seed{seed}.json')


def git_commit() -> str:
    """HEAD of the repository, with ``+dirty`` when tracked files under pmtseg_mm/, configs/ or
    tools/ differ from it ('unknown' outside a git checkout)."""
    try:
        head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no', '--',
                                'pmtseg_mm', 'configs', 'tools'], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return head + ('+dirty' if dirty else '')


def run_one(job: Tuple[str, str, int, argparse.Namespace, Dict[str, Tuple[str, int]],
                       int]) -> Dict[str, dict]:
    """Train one config with one seed, test it on all val images and per condition; write the
    run's JSON to the results folder (a run whose JSON exists is read, not trained again)."""
    name, config, seed, args, subsets, threads = job
    saved = result_path(args.results_dir, config, seed, args.iters)
    if osp.exists(saved):
        with open(saved) as f:
            return json.load(f)
    import torch
    torch.set_num_threads(threads)
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import pmtseg_mm  # noqa: F401
    init_default_scope('mmdet')
    work_dir = osp.join(args.work_dir, re.sub(r'[^\w.-]+', '_', name).strip('_'), f'seed{seed}')
    start = time.time()
    cfg = build_cfg(config, args, seed, work_dir)
    runner = Runner.from_cfg(cfg)
    runner.train()
    checkpoint = osp.join(work_dir, f'iter_{cfg.train_cfg.max_iters}.pth')
    result = test_checkpoint(config, args, seed, work_dir, checkpoint, subsets)
    result.update(iters=cfg.train_cfg.max_iters, train_s=time.time() - start)
    if args.test_twins:
        result['twins'] = {
            tag: test_checkpoint(twin, args, seed, osp.join(work_dir, f'test-{tag}'), checkpoint,
                                 subsets) for tag, twin in test_twins(config).items()}
    result['wall_s'] = time.time() - start
    result.update(
        seed=seed, config=osp.relpath(osp.abspath(config), ROOT), commit=args.commit,
        command=args.command, threads=threads, batch_size=args.batch_size,
        date=datetime.datetime.now().isoformat(timespec='seconds'))
    result = json.loads(json.dumps(result, default=float))
    os.makedirs(osp.dirname(saved), exist_ok=True)
    with open(saved + '.tmp', 'w') as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(saved + '.tmp', saved)
    return result


def test_twins(config: str) -> Dict[str, str]:
    """``{tag: path}`` of the ``<stem>_test-<tag>.py`` configs next to ``config``."""
    stem = osp.splitext(config)[0]
    return {osp.splitext(path)[0][len(stem) + 6:]: path
            for path in sorted(glob.glob(glob.escape(stem) + '_test-*.py'))}


def test_checkpoint(config: str, args: argparse.Namespace, seed: int, work_dir: str,
                    checkpoint: str, subsets: Dict[str, Tuple[str, int]]) -> Dict[str, dict]:
    """Metrics of ``checkpoint`` tested with ``config``: all val images, then per condition."""
    from mmengine.runner import Runner
    cfg = build_cfg(config, args, seed, work_dir)
    cfg.load_from = checkpoint
    result = dict(all=Runner.from_cfg(cfg).test())
    for cond, (ann_name, _) in subsets.items():
        sub = build_cfg(config, args, seed, osp.join(work_dir, cond))
        sub.test_dataloader.dataset.ann_file = 'annotations/' + ann_name
        sub.test_evaluator = [
            dict(e, ann_file=osp.join(osp.dirname(e.ann_file), ann_name)) for e in sub.test_evaluator
            if e.type.endswith('PanopticMetric')] + [
            e for e in sub.test_evaluator if e.type.endswith('SemSegMetric')]
        sub.load_from = checkpoint
        result[cond] = Runner.from_cfg(sub).test()
    return result


def mean_std(values: List[float]) -> str:
    values = np.asarray(values, dtype=float)
    return f'{values.mean():.1f} ± {values.std():.1f}' if len(values) > 1 else f'{values[0]:.1f}'


def format_tables(runs: Dict[str, List[dict]], classes: Sequence[str]) -> str:
    """Markdown tables: overall, per condition (PQ, mIoU), per class (PQ, IoU, AP)."""
    out = ['| model | ' + ' | '.join(COLUMNS) + ' |', '|---' * (len(COLUMNS) + 1) + '|']
    for name, results in runs.items():
        cells = [mean_std([r['all'][key] for r in results]) for key in COLUMNS.values()]
        out.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    heads = [f'{m} {c}' for c in CONDITIONS for m in CONDITION_COLUMNS]
    out += ['', '| model | ' + ' | '.join(heads) + ' |', '|---' * (len(heads) + 1) + '|']
    for name, results in runs.items():
        cells = [mean_std([r[c][key] for r in results]) if c in results[0] else '–'
                 for c in CONDITIONS for key in CONDITION_COLUMNS.values()]
        out.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    heads = [f'{m} {c}' for c in classes for m in CLASS_KEYS]
    out += ['', '| model | ' + ' | '.join(heads) + ' |', '|---' * (len(heads) + 1) + '|']
    for name, results in runs.items():
        cells = []
        for cls in classes:
            for key in CLASS_KEYS.values():
                values = [r['all'].get(key.format(cls)) for r in results]
                cells.append('–' if None in values else mean_std(values))
        out.append(f'| {name} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(out)


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    args.commit = git_commit()
    args.command = shlex.join(['python', osp.relpath(osp.abspath(__file__), ROOT)] +
                              list(sys.argv[1:] if argv is None else argv))
    os.makedirs(args.work_dir, exist_ok=True)
    start = time.time()
    from pmtseg_mm.datasets.synthetic import SYNTHETIC_METAINFO, generate_synthetic
    if not osp.exists(osp.join(args.data_root, 'annotations', 'panoptic_val.json')):
        generate_synthetic(args.data_root, num_train=args.num_train, num_val=args.num_val,
                           size=128, aux='depth', seed=args.data_seed, workers=2)
    subsets = condition_subsets(args.data_root)
    threads = max(1, args.threads // args.jobs)
    os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(threads)
    jobs = [(name, config, seed, args, subsets, threads) for seed in args.seeds
            for name, config in zip(args.names, args.configs)]
    runs: Dict[str, List[dict]] = {name: [] for name in args.names}
    failed = []
    with ProcessPoolExecutor(args.jobs, mp_context=get_context('spawn')) as pool:
        futures = [pool.submit(run_one, job) for job in jobs]
        for (name, config, seed, *_), future in zip(jobs, futures):
            try:
                result = future.result()
            except Exception as exc:  # one broken config must not lose the other runs
                failed.append(f'{name} seed {seed} ({config}): {type(exc).__name__}: {exc}')
                print(f'[benchmark] FAILED {failed[-1]}', flush=True)
                continue
            runs[name].append(result)
            for tag, twin in result.get('twins', {}).items():
                runs.setdefault(f'{name} [{tag}]', []).append(twin)
            for tag, res in [('', result)] + [(f' [{t}]', r) for t, r in
                                              result.get('twins', {}).items()]:
                row = ', '.join(f'{k} {res["all"][v]:.1f}' for k, v in COLUMNS.items())
                print(f'[benchmark] {name}{tag} seed {seed} ({result["wall_s"] / 60:.1f} min): '
                      f'{row}', flush=True)
    runs = {name: results for name, results in runs.items() if results}
    wall = time.time() - start
    budgets = {r.get('iters', args.iters) for results in runs.values() for r in results} - {None}
    iters = '/'.join(map(str, sorted(budgets))) or "the configs'"
    counts = ', '.join(f'{c} {n}' for c, (_, n) in subsets.items())
    summary = (f'Synthetic optical+depth benchmark ({args.data_root}): {args.num_train} train / '
               f'{args.num_val} val images of 128x128 (val conditions: {counts}), {iters} '
               f'iterations at batch {args.batch_size}, seeds {args.seeds}, {args.jobs} job(s) x '
               f'{threads} thread(s); mean ± std over seeds; wall time {wall / 60:.1f} min\n\n'
               + format_tables(runs, SYNTHETIC_METAINFO['classes']))
    print(summary)
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(args={k: v for k, v in vars(args).items()}, runs=runs, wall_s=wall), f,
                  indent=1)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(summary + '\n')
    if failed:
        raise SystemExit('benchmark_synthetic: failed runs:\n' + '\n'.join(failed))


if __name__ == '__main__':
    main()
