"""Every classic config of configs/pmtseg/ and configs/baselines/ has a Python-style twin under
pmtseg_mm/configs/, found by mmdet's naming split: the same folder and the classic file name with
hyphens replaced by underscores (classic configs use hyphens; importable modules cannot)::

    configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py
    pmtseg_mm/configs/pmtseg/pmtseg_r18_tiny_1xb4_1000it_synthetic_depth_128x128.py

Both configs must give the same dict for everything the Runner builds (model, dataloaders with
their pipelines, evaluators, schedule, hooks, runtime) once types are compared as the classes
they name: a classic type string is looked up in mmdet's registries (default scope 'mmdet', as
the classic configs run), a Python-style type is the imported class. The same holds for the
classic ``_base_`` files, each of which has a twin of the same name."""
import glob
import os.path as osp

import pytest
import torch
from mmdet import registry as mmdet_registry
from mmdet.registry import MODELS
from mmengine.config import Config
from mmengine.config.lazy import LazyAttr, LazyObject
from mmengine.registry import DefaultScope, Registry

from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FAMILIES = ('pmtseg', 'baselines')
CLASSIC = sorted(p for family in FAMILIES
                 for p in glob.glob(osp.join(ROOT, 'configs', family, '*.py')))
CLASSIC_BASES = sorted(glob.glob(osp.join(ROOT, 'configs', '_base_', '**', '*.py'), recursive=True))
#: What the Runner reads; helper variables of the configs (r50, pipeline_values...) are not.
RUNNER_KEYS = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
               'val_cfg', 'test_cfg', 'optim_wrapper', 'param_scheduler', 'val_evaluator',
               'test_evaluator', 'default_hooks', 'custom_hooks', 'env_cfg', 'log_processor',
               'visualizer', 'vis_backends', 'default_scope', 'log_level', 'load_from', 'resume',
               'auto_scale_lr', 'randomness', 'launcher', 'work_dir')
#: Keys whose string values are registry names (a class in the Python-style configs).
TYPE_KEYS = ('type', 'resize_type', 'constructor')
REGISTRIES = [r for r in vars(mmdet_registry).values()
              if isinstance(r, Registry) and r.scope == 'mmdet']


def twin_path(classic: str) -> str:
    """The Python-style twin of a classic config: hyphens become underscores."""
    rel = osp.relpath(classic, osp.join(ROOT, 'configs'))
    return osp.join(ROOT, 'pmtseg_mm', 'configs', rel.replace('-', '_'))


def _ids(paths):
    return [osp.relpath(p, osp.join(ROOT, 'configs')) for p in paths]


def _resolve(name: str):
    """The class (or function) ``name`` stands for in mmdet's scope, or the name itself."""
    found = set()
    with DefaultScope.overwrite_default_scope('mmdet'):
        for registry in REGISTRIES:
            try:
                obj = registry.get(name)
            except Exception:  # noqa: BLE001 (a registry that cannot import its location)
                obj = None
            if obj is not None:
                found.add(obj)
    assert len(found) <= 1, f'{name!r} names different objects in mmdet registries: {found}'
    return found.pop() if found else name


def canonical(node, key=None):
    """A config tree with every type as ``module.qualname`` of what it builds, tuples as lists
    and without the ``_scope_`` tags of dicts from ``mmdet::`` bases (the default scope)."""
    if isinstance(node, (LazyObject, LazyAttr)):
        node = node.build()
    if isinstance(node, dict):
        # `mmdet::` bases tag their dicts with their scope, the configs' default one
        assert node.get('_scope_', 'mmdet') == 'mmdet', node
        return {k: canonical(v, k) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [canonical(v) for v in node]
    if isinstance(node, str) and key in TYPE_KEYS:
        node = _resolve(node)
    if isinstance(node, type) or callable(node):
        return f'{node.__module__}.{node.__qualname__}'
    return node


def runner_dict(cfg: Config) -> dict:
    return {key: canonical(cfg[key], key) for key in RUNNER_KEYS if key in cfg}


def test_every_classic_config_has_its_twin():
    assert len(CLASSIC) >= 15  # the families of the README's configs table
    missing = [osp.relpath(twin_path(p), ROOT) for p in CLASSIC if not osp.isfile(twin_path(p))]
    assert not missing, f'Python-style twins missing: {missing}'
    # and every Python-style top-level config is the twin of a classic one
    classic_twins = {twin_path(p) for p in CLASSIC}
    for family in FAMILIES:
        for path in glob.glob(osp.join(ROOT, 'pmtseg_mm', 'configs', family, '*.py')):
            assert path in classic_twins or path.endswith('__init__.py'), \
                f'{path} is the twin of no classic config'


def test_every_classic_base_has_its_twin():
    missing = [osp.relpath(twin_path(p), ROOT) for p in CLASSIC_BASES
               if not osp.isfile(twin_path(p))]
    assert not missing, f'Python-style bases missing: {missing}'


@pytest.mark.parametrize('classic', CLASSIC, ids=_ids(CLASSIC))
def test_twin_builds_what_the_classic_config_builds(classic, skip_without_torchvision):
    old = Config.fromfile(classic)
    skip_without_torchvision(old)
    new = Config.fromfile(twin_path(classic))
    assert old.custom_imports['imports'] == ['pmtseg_mm']
    assert 'custom_imports' not in new  # classes are imported: nothing to register
    assert isinstance(new._cfg_dict['model']['type'], (type, LazyObject)), \
        'a Python-style config names classes, not strings'
    old_dict, new_dict = runner_dict(old), runner_dict(new)
    assert set(old_dict) == set(new_dict)
    for key in old_dict:  # one assertion per key: the diff names the part that differs
        assert new_dict[key] == old_dict[key], f'`{key}` differs'


@pytest.mark.parametrize('classic', [p for p in CLASSIC if 'r18-tiny' in p],
                         ids=_ids([p for p in CLASSIC if 'r18-tiny' in p]))
def test_tiny_twin_builds_the_same_parameters(classic):
    """Build both models (the tiny ones; the R50 dicts are compared above): same parameters."""
    shapes = []
    for path in (classic, twin_path(classic)):
        cfg = Config.fromfile(path)
        drop_pretrained(cfg.model)
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('mmdet'):
            model = MODELS.build(cfg.model)
        shapes.append([(n, tuple(p.shape)) for n, p in model.named_parameters()])
    assert shapes[0] == shapes[1]
