"""Run every test with mmdet as the default registry scope, as the Runner does for our configs."""
import warnings

import pytest
import torch
from mmengine.registry import init_default_scope

import pmtseg_mm  # noqa: F401  (registers components)

warnings.filterwarnings('ignore', category=DeprecationWarning)
torch.set_num_threads(2)


@pytest.fixture(autouse=True, scope='session')
def mmdet_scope():
    init_default_scope('mmdet')
