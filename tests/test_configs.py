"""Every config under configs/ parses, its model builds and its pipelines' transforms build."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def _drop_pretrained(node):
    """Pretrained links need internet: build with random weights instead."""
    if isinstance(node, dict):
        if isinstance(node.get('init_cfg'), dict) and node['init_cfg'].get('type') == 'Pretrained':
            node['init_cfg'] = None
        for value in node.values():
            _drop_pretrained(value)
    elif isinstance(node, list):
        for value in node:
            _drop_pretrained(value)


def test_configs_found():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['pmtseg_mm']
    _drop_pretrained(cfg.model)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[loader].dataset.pipeline:
            TRANSFORMS.build(step)
    channels = tuple(cfg.model.data_preprocessor.modality_channels)
    loaded = tuple(opts.get('channels') for opts in cfg.train_dataloader.dataset.pipeline[0]
                   .modalities.values())
    assert channels == loaded, 'preprocessor modality_channels must match the loaded channels'
