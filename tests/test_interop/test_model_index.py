"""The model index that ``mim search pmtseg_mm`` reads: model-index.yml imports one metafile.yml
per config family (configs/pmtseg, configs/baselines, configs/mmseg), shipped in pmtseg_mm/.mim
like the configs. Each metafile lists every config of its folder with the parameters of the
built model, its iterations and batch size, and the results this repository measured, copied
from the tables of README.md ("Results on the synthetic benchmark") and docs/inference.md
("Missing modality"); no weights are published, so no model has a ``Weights`` value. When those
tables change, update the metafiles: the failures below give the values the tables hold now."""
import glob
import os
import os.path as osp
import subprocess
import sys

import pytest
import yaml
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAMILIES = ('pmtseg', 'baselines', 'mmseg')
CONFIGS = sorted(p for family in FAMILIES
                 for p in glob.glob(osp.join(ROOT, 'configs', family, '*.py')))
TASK_METRICS = {
    'Panoptic Segmentation': ('PQ', 'PQ_th', 'PQ_st', 'SQ', 'RQ'),
    'Instance Segmentation': ('AP', 'AP50', 'AP75'),
    'Semantic Segmentation': ('mIoU', 'mAcc', 'OA'),
}
SYNTHETIC = 'Synthetic optical + depth'
DEPTH_MISSING = 'Synthetic optical + depth, depth declared missing'
MISSING_TABLE = '| model (trained) | tested with |'
MAIN_TABLE = '| model | PQ | PQ_th |'
EFFICIENCY_TABLE = '| model | params (M) | GFLOPs |'
#: config name -> (page, table header, row key, dataset) of its measured results
RESULTS = {
    'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128':
    ('README.md', MAIN_TABLE, ('PMTSeg', ), SYNTHETIC),
    'mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128':
    ('README.md', MAIN_TABLE, ('Mask2Former-EF', ), SYNTHETIC),
    'mask2former-optical_r18-tiny_1xb4-1000it_synthetic-depth-128x128':
    ('README.md', MAIN_TABLE, ('Mask2Former (optical)', ), SYNTHETIC),
    'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128_test-optical-only':
    ('docs/inference.md', MISSING_TABLE, ('PMTSeg', 'optical only (depth declared missing)'),
     DEPTH_MISSING),
    'pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128':
    ('docs/inference.md', MISSING_TABLE, ('PMTSeg + ModalityDropout(0.3)', 'optical + depth'),
     SYNTHETIC),
    'pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128_test-optical-only':
    ('docs/inference.md', MISSING_TABLE,
     ('PMTSeg + ModalityDropout(0.3)', 'optical only (depth declared missing)'), DEPTH_MISSING),
}
#: config name -> row of the efficiency table (docs/benchmarks.md, mmcv's attention) for GFLOPs
GFLOPS = {
    'pmtseg_r50_1xb4-300e_synthetic-depth-128x128': '**PMTSeg R50** (3 encoder layers)',
    'mask2former-ef_r50_1xb4-300e_synthetic-depth-128x128': 'Mask2Former-EF R50',
    'mask2former-optical_r50_1xb4-300e_synthetic-depth-128x128': 'Mask2Former R50, optical only',
}


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def table(page: str, header_start: str):
    """Header cells and row cells of the first table of ``page`` whose header starts so."""
    with open(osp.join(ROOT, page), encoding='utf-8') as f:
        lines = f.read().split('\n')
    for i, line in enumerate(lines):
        if line.startswith(header_start):
            cells = [[c.strip() for c in row.strip().strip('|').split('|')]
                     for row in [line] + lines[i + 2:]]
            end = next((k for k, row in enumerate(lines[i + 2:]) if not row.startswith('|')),
                       len(lines) - i - 2)
            return cells[0], cells[1:end + 1]
    raise AssertionError(f'{page}: no table starting with {header_start!r}')


def _number(cell: str) -> float:
    """The mean of a "mean ± std" cell, or the number of a "163 (×2.43)" one."""
    return float(cell.split('±')[0].split('(')[0].strip(' *'))


def measured_results(name: str) -> list:
    """The modelindex ``Results`` of config ``name`` from the tables it was measured in."""
    if name not in RESULTS:
        return []
    page, header_start, key, dataset = RESULTS[name]
    header, rows = table(page, header_start)
    matches = [row for row in rows if tuple(row[:len(key)]) == key]
    assert len(matches) == 1, f'{page}: no single row {key} in the table {header_start!r}'
    values = dict(zip(header, matches[0]))
    results = []
    for task, metrics in TASK_METRICS.items():
        found = {m: _number(values[m]) for m in metrics if m in values}
        if found:
            results.append(dict(Task=task, Dataset=dataset, Metrics=found))
    return results


def measured_gflops(name: str):
    if name not in GFLOPS:
        return None
    header, rows = table('docs/benchmarks.md', EFFICIENCY_TABLE)
    row = next(r for r in rows if r[0] == GFLOPS[name])
    return _number(dict(zip(header, row))['GFLOPs'])


def load_index() -> dict:
    """Model name -> (metafile entry, metafile path) over the files model-index.yml imports."""
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    models = {}
    for metafile in index['Import']:
        with open(osp.join(ROOT, metafile)) as f:
            meta = yaml.safe_load(f)
        collections = {c['Name'] for c in meta['Collections']}
        for model in meta['Models']:
            assert model['In Collection'] in collections, model['Name']
            assert model['Name'] not in models, f'{model["Name"]} listed twice'
            models[model['Name']] = (model, metafile)
    return models


def test_index_imports_one_metafile_per_family():
    with open(osp.join(ROOT, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert index['Import'] == [f'configs/{family}/metafile.yml' for family in FAMILIES]


def test_every_config_is_listed_once_with_its_config():
    models = load_index()
    assert sorted(models) == sorted(_name(p) for p in CONFIGS)
    for name, (model, metafile) in models.items():
        assert model['Config'] == osp.join(osp.dirname(metafile), name + '.py')
        assert osp.isfile(osp.join(ROOT, model['Config']))
        assert model['Weights'] is None, f'{name}: no weights are published'


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_metadata_and_results_are_what_was_measured(path, skip_without_torchvision):
    model, _ = load_index()[_name(path)]
    meta = model['Metadata']
    cfg = Config.fromfile(path)
    skip_without_torchvision(cfg)
    assert meta['Iterations'] == cfg.train_cfg.max_iters
    assert meta['Batch Size'] == cfg.train_dataloader.batch_size
    drop_pretrained(cfg.model)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        built = MODELS.build(cfg.model)
    params = sum(p.numel() for p in built.parameters())
    assert meta['Parameters'] == params, f'{_name(path)}: the model has {params} parameters'
    assert meta.get('GFLOPs') == measured_gflops(_name(path))
    expected = measured_results(_name(path))
    assert model['Results'] == expected, f'{_name(path)}: the tables give {expected}'


@pytest.mark.slow
def test_mim_search_lists_the_models(tmp_path):
    """From outside the repository, through the installed package's .mim folder."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run(
        [sys.executable, '-m', 'mim', 'search', 'pmtseg_mm', '--valid-config'],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    for path in CONFIGS:
        assert _name(path) in proc.stdout, f'mim search does not list {_name(path)}'
