"""FiniteLossHook: a non-finite loss term stops training before the update and the checkpoint."""
import os
import os.path as osp

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset


class _Toy(BaseModel):
    """loss_cls is finite; loss_mask becomes NaN from the ``bad_iter``-th call on."""

    def __init__(self, bad_iter: int = 3) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.calls = 0
        self.bad_iter = bad_iter

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, list) else inputs
        out = self.linear(x).mean()
        if mode != 'loss':
            return [out]
        self.calls += 1
        bad = out * float('nan') if self.calls >= self.bad_iter else out * 0
        return dict(loss_cls=out ** 2, loss_mask=bad)


class _Data(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return dict(inputs=torch.ones(2) * i)


class _WeightSpy(Hook):
    """Records the weights after each completed iteration."""

    def __init__(self) -> None:
        self.weights = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.weights[runner.iter + 1] = runner.model.linear.weight.detach().clone()


def _runner(work_dir, hooks):
    return Runner(
        model=_Toy(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=_Data(), sampler=dict(type='InfiniteSampler'), batch_size=2,
                              num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=5),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=hooks, default_scope='mmdet', experiment_name=f'finite_{len(hooks)}')


def test_non_finite_loss_stops_before_update_naming_term_and_iteration(tmp_path):
    runner = _runner(tmp_path, [dict(type='FiniteLossHook')])
    spy = _WeightSpy()
    runner.register_hook(spy, 'LOWEST')
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    text = str(err.value)
    assert 'loss_mask=nan' in text and 'iteration 3' in text and 'loss_cls' not in text
    assert torch.isfinite(runner.model.linear.weight).all()  # the NaN never reached the weights
    assert torch.equal(runner.model.linear.weight, spy.weights[2])
    names = sorted(n for n in os.listdir(tmp_path) if n.endswith('.pth'))
    assert names == ['iter_1.pth', 'iter_2.pth']


def test_without_the_hook_nan_weights_are_saved(tmp_path):
    runner = _runner(tmp_path, [])
    runner.train()
    state = torch.load(osp.join(tmp_path, 'iter_5.pth'), map_location='cpu')['state_dict']
    assert not torch.isfinite(state['linear.weight']).all()  # what the hook prevents


def test_cpu_bf16_optim_wrapper_autocasts_forward_only(tmp_path):
    model = _Toy(bad_iter=100)
    dtypes = []
    model.linear.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    runner = Runner(
        model=model, work_dir=str(tmp_path),
        train_dataloader=dict(dataset=_Data(), sampler=dict(type='InfiniteSampler'), batch_size=2,
                              num_workers=0),
        optim_wrapper=dict(type='CPUBF16OptimWrapper', optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=2), default_hooks=dict(checkpoint=None),
        custom_hooks=[dict(type='FiniteLossHook')], default_scope='mmdet',
        experiment_name='bf16')
    before = model.linear.weight.detach().clone()
    runner.train()
    assert dtypes == [torch.bfloat16, torch.bfloat16]
    assert model.linear.weight.dtype == torch.float32
    assert not torch.equal(model.linear.weight, before)
