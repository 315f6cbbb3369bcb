"""The README's "Using the parts from your own configs" snippets, on top of mmdet's stock
Mask2Former panoptic config, build; the early-fusion one runs one loss step (3 + 1 channels)."""
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


@pytest.mark.parametrize('name, model_type', [('early-fusion', 'Mask2Former'),
                                              ('pmtseg-parts', 'PMTSeg')])
def test_snippet_builds_and_steps(tmp_path, name, model_type):
    path = tmp_path / f'{name}.py'
    path.write_text(_snippets()[name])
    cfg = Config.fromfile(str(path))
    drop_pretrained(cfg.model)  # pretrained links need internet
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == model_type
    assert type(model.backbone).__name__ == 'DualBackbone'
    if model_type == 'PMTSeg':  # two R50 + TMSF + PSH: one step is minutes on a shared CPU
        assert type(model.neck).__name__ == 'TMSFNeck'
        assert type(model.panoptic_head).__name__ == 'PSHHead'
        assert model.panoptic_head.num_things_classes == 3
        return
    model.train()
    torch.manual_seed(0)
    losses = model.loss(torch.rand(1, 4, 64, 64), [_sample()])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.backbone.backbones[0].conv1.weight.grad is not None
