"""Every config under configs/ parses, its model builds and its pipelines' transforms build."""
import glob
import os.path as osp

import pytest
from mmdet.registry import MODELS, TRANSFORMS
from mmengine.config import Config

from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_found():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['pmtseg_mm']
    drop_pretrained(cfg.model)  # pretrained links need internet
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        for step in cfg[loader].dataset.pipeline:
            TRANSFORMS.build(step)
    channels = tuple(cfg.model.data_preprocessor.modality_channels)
    loaded = tuple(opts.get('channels') for opts in cfg.train_dataloader.dataset.pipeline[0]
                   .modalities.values())
    assert channels == loaded, 'preprocessor modality_channels must match the loaded channels'
