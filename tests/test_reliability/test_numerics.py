"""Numerical robustness of the tiny PMTSeg: finite losses on degenerate labels, bf16 autocast."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData
from reliability_helpers import ROOT

from pmtseg_mm.utils import drop_pretrained

S = 64  # 3 things (0-2) + 3 stuff (3-5) classes in the tiny config


def _model(task):
    path = sorted(glob.glob(osp.join(ROOT, 'configs/pmtseg/pmtseg_r18-tiny_*synthetic-depth*.py')))
    cfg = Config.fromfile(path[0]).model
    drop_pretrained(cfg)
    cfg.panoptic_head.task_probs = {task: 1.0}
    cfg.train_cfg.num_points = 256
    torch.manual_seed(0)
    return MODELS.build(cfg)


def _sample(case):
    sem = torch.full((S, S), 3, dtype=torch.long)  # road everywhere
    masks = np.zeros((0, S, S), np.uint8)
    labels = torch.zeros(0, dtype=torch.long)
    if case in ('no_stuff', 'single_thing'):
        masks = np.zeros((2 if case == 'no_stuff' else 1, S, S), np.uint8)
        if case == 'no_stuff':  # two buildings tile the image: no stuff pixel
            masks[0, :, :S // 2] = masks[1, :, S // 2:] = 1
        else:  # one building covers everything
            masks[0] = 1
        labels = torch.zeros(len(masks), dtype=torch.long)
        sem[:] = 0
    elif case == 'all_void':
        sem[:] = 255
    ds = DetDataSample(metainfo=dict(img_shape=(S, S), ori_shape=(S, S), pad_shape=(S, S),
                                     batch_input_shape=(S, S)))
    ds.gt_instances = InstanceData(labels=labels, masks=BitmapMasks(masks, S, S))
    ds.gt_sem_seg = PixelData(sem_seg=sem[None])
    return ds


CASES = ('no_things', 'no_stuff', 'single_thing', 'all_void')


def _assert_finite_step(model, inputs, samples, where):
    losses = model.loss(inputs, samples)
    bad = {k: float(v) for k, v in losses.items() if not torch.isfinite(v).all()}
    assert not bad, f'{where}: {bad}'
    model.zero_grad()
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads), f'{where}: non-finite grads'


@pytest.mark.parametrize('task', ['semantic', 'instance', 'panoptic'])
def test_losses_finite_on_degenerate_labels(task):
    """Panoptic: each case alone (a batch of one degenerate image); the other task prompts: one
    image per case in a batch (their targets differ: semantic merges, instance drops stuff)."""
    model = _model(task)
    torch.manual_seed(1)
    inputs = torch.randn(len(CASES), 4, S, S)
    if task == 'panoptic':
        for i, case in enumerate(CASES):
            _assert_finite_step(model, inputs[i:i + 1], [_sample(case)], f'{task}/{case}')
    else:
        _assert_finite_step(model, inputs, [_sample(c) for c in CASES], task)


def test_tmaa_and_contrastive_losses_finite_under_bf16_autocast():
    model = _model('panoptic')
    torch.manual_seed(2)
    inputs = torch.randn(2, 4, S, S)
    samples = [_sample('no_stuff'), _sample('no_things')]
    torch.manual_seed(3)  # same point sampling in both precisions
    with torch.autocast('cpu', dtype=torch.bfloat16):
        losses = model.loss(inputs, samples)
    assert {'loss_tmaa', 'loss_con'} <= set(losses)
    bad = {k: float(v) for k, v in losses.items() if not torch.isfinite(v).all()}
    assert not bad
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    torch.manual_seed(3)
    with torch.no_grad():  # same inputs in float32: bf16 stays close on the two new terms
        ref = model.loss(inputs, samples)
    for key in ('loss_tmaa', 'loss_con'):
        assert abs(float(losses[key]) - float(ref[key])) <= 0.1 * abs(float(ref[key])) + 0.05
