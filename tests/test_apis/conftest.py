"""A tiny random-weight PMTSeg inferencer shared by the inference tests (built once)."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from pmtseg_mm.apis import MultiModalInferencer, find_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the CPU-sized PMTSeg config on the synthetic optical + depth data
TINY = sorted(glob.glob(osp.join(ROOT, 'configs', 'pmtseg',
                                 'pmtseg_r18-tiny_*_synthetic-depth-128x128.py')))[0]


def tiny_config() -> Config:
    """The CPU-sized PMTSeg config with 16-channel ResNet-18 backbones."""
    cfg = Config.fromfile(find_config(TINY))
    r18 = dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), base_channels=16,
               stem_channels=16, init_cfg=None)
    cfg.model.backbone.backbones = [r18, r18]
    cfg.model.neck.in_channels = [[16, 32, 64, 128]] * 2
    return cfg


@pytest.fixture
def tiny_cfg() -> Config:
    return tiny_config()


@pytest.fixture(scope='session')
def inferencer() -> MultiModalInferencer:
    import torch
    torch.manual_seed(0)
    return MultiModalInferencer(tiny_config(), device='cpu')


@pytest.fixture(autouse=True)
def one_thread():
    """Small windows gain little from intra-op threads, and 2 threads on a busy 2-core machine
    run many times slower (OpenMP oversubscription): 1 thread here, restored afterwards."""
    import torch
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)
