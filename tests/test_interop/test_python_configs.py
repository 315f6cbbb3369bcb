"""Python-style configs (pmtseg_mm/configs) build the same models as their classic twins."""
import os.path as osp

import pytest
from mmdet.registry import MODELS
from mmengine.config import Config

from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAIRS = [
    ('pmtseg/pmtseg_r50_1xb4_300e_synthetic_depth_128x128.py',
     'pmtseg/pmtseg_r50_1xb4-300e_synthetic-depth-128x128.py'),
    ('pmtseg/pmtseg_r50_1xb4_300e_semcity_toulouse_128x128.py',
     'pmtseg/pmtseg_r50_1xb4-300e_semcity-toulouse-128x128.py'),
    ('baselines/mask2former_ef_r50_1xb4_300e_synthetic_depth_128x128.py',
     'baselines/mask2former-ef_r50_1xb4-300e_synthetic-depth-128x128.py'),
    ('baselines/mask2former_ef_r50_1xb4_300e_semcity_toulouse_128x128.py',
     'baselines/mask2former-ef_r50_1xb4-300e_semcity-toulouse-128x128.py'),
]


def _name(value) -> str:
    return value if isinstance(value, str) else value.__name__


@pytest.mark.parametrize('python_cfg, classic_cfg', PAIRS, ids=[p[0] for p in PAIRS])
def test_python_config_builds_the_classic_model(python_cfg, classic_cfg):
    new = Config.fromfile(osp.join(ROOT, 'pmtseg_mm', 'configs', python_cfg))
    old = Config.fromfile(osp.join(ROOT, 'configs', classic_cfg))
    assert 'custom_imports' not in new  # classes are imported: nothing to register
    models = []
    for cfg in (new, old):
        drop_pretrained(cfg.model)  # pretrained links need internet
        models.append(MODELS.build(cfg.model))
    assert type(models[0]) is type(models[1])
    shapes = [[(n, tuple(p.shape)) for n, p in m.named_parameters()] for m in models]
    assert shapes[0] == shapes[1]
    assert sum(p.numel() for p in models[0].parameters()) == \
        sum(p.numel() for p in models[1].parameters())
    # same data, schedule and metrics
    assert new.train_cfg.max_iters == old.train_cfg.max_iters
    assert new.train_cfg.val_interval == old.train_cfg.val_interval
    assert list(new.param_scheduler.milestones) == list(old.param_scheduler.milestones)
    for loader in ('train_dataloader', 'val_dataloader'):
        a, b = new[loader].dataset, old[loader].dataset
        assert _name(a.type) == b.type and a.data_root == b.data_root
        assert dict(a.modalities) == dict(b.modalities)
        assert dict(a.modality_suffixes) == dict(b.modality_suffixes)
        assert [_name(s['type']) for s in a.pipeline] == [s['type'] for s in b.pipeline]
        assert [dict(s).get('ratio_range') for s in a.pipeline] == \
            [dict(s).get('ratio_range') for s in b.pipeline]
    assert [_name(e['type']) for e in new.val_evaluator] == \
        [e['type'] for e in old.val_evaluator]
    assert [e.get('ann_file') for e in new.val_evaluator] == \
        [e.get('ann_file') for e in old.val_evaluator]
    assert list(new.model.data_preprocessor.mean) == list(old.model.data_preprocessor.mean)
