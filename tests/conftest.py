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
