"""The README's "Using the parts from your own configs" snippets, on top of mmdet's stock
Mask2Former panoptic config, build and run one loss step on a 64x64 optical + depth input with
random weights: early fusion (one R50 over 3 + 1 channels) and DualBackbone + TMSFNeck + PSHHead
(two R50)."""
import os.path as osp
import re

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _snippets() -> dict:
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    blocks = re.findall(r'```python\n(# snippet: ([\w-]+)\n.*?)```', text, flags=re.S)
    return {name: code for code, name in blocks}


def test_readme_has_the_snippets():
    assert set(_snippets()) >= {'early-fusion', 'pmtseg-parts'}


def _sample() -> DetDataSample:
    sem = torch.full((64, 64), 3, dtype=torch.long)
    sem[32:] = 4
    masks = np.zeros((2, 64, 64), dtype=np.uint8)
    masks[0, 0:16, 0:16] = 1
    masks[1, 40:48, 8:24] = 1
    labels = torch.tensor([0, 2])
    for k in range(2):
        sem[torch.from_numpy(masks[k]).bool()] = labels[k]
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         pad_shape=(64, 64), batch_input_shape=(64, 64)))
    sample.gt_instances = InstanceData(labels=labels, masks=BitmapMasks(masks, 64, 64))
    sample.gt_sem_seg = PixelData(sem_seg=sem[None])
    return sample


@pytest.fixture
def one_thread():
    """Two R50 on one thread: a loaded machine's OpenMP contention otherwise dominates."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize('name, model_type, terms', [
    ('early-fusion', 'Mask2Former', {'loss_cls', 'loss_mask', 'loss_dice'}),
    ('pmtseg-parts', 'PMTSeg', {'loss_cls', 'loss_mask', 'loss_dice', 'loss_tmaa', 'loss_con'}),
])
def test_snippet_builds_and_steps(tmp_path, one_thread, name, model_type, terms):
    path = tmp_path / f'{name}.py'
    path.write_text(_snippets()[name])
    cfg = Config.fromfile(str(path))
    drop_pretrained(cfg.model)  # pretrained links need internet
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == model_type
    assert type(model.backbone).__name__ == 'DualBackbone'
    if model_type == 'PMTSeg':
        assert type(model.neck).__name__ == 'TMSFNeck'
        assert type(model.panoptic_head).__name__ == 'PSHHead'
        assert model.panoptic_head.num_things_classes == 3
    model.train()
    losses = model.loss(torch.rand(1, 4, 64, 64), [_sample()])
    assert terms <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    for backbone in model.backbone.backbones:  # every modality's backbone gets a gradient
        assert backbone.conv1.weight.grad.abs().sum() > 0
