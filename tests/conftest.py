"""Run every test with mmdet as the default registry scope, as the Runner does for our configs."""
import os
import warnings

import pytest
import torch
from mmengine.registry import init_default_scope

import pmtseg_mm  # noqa: F401  (registers components)

warnings.filterwarnings('ignore', category=DeprecationWarning)
# PMTSEG_TEST_THREADS: fewer threads when the suite runs beside another torch job (2 cores)
torch.set_num_threads(int(os.environ.get('PMTSEG_TEST_THREADS', '2')))


@pytest.fixture(autouse=True, scope='session')
def mmdet_scope():
    init_default_scope('mmdet')


@pytest.fixture
def skip_without_torchvision():
    """``check(cfg)`` skips the test when the config's model names an ``mmpretrain.*`` backbone
    and torchvision (an opt-in install: docs/install.md) does not import."""
    import importlib.util

    def check(cfg) -> None:
        backbone = cfg.model.get('backbone') or {}
        branches = backbone.get('backbones') or [backbone]
        branches = [branches] if isinstance(branches, dict) else branches
        if (any(str(b.get('type', '')).startswith('mmpretrain.') for b in branches)
                and importlib.util.find_spec('torchvision') is None):
            pytest.skip('mmpretrain backbones need torchvision: PMTSEG_TORCHVISION=1 bash '
                        'tools/install.sh')
    return check
