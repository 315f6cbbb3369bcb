"""Test-only hook (imported by the generated configs of test_distributed.py): every rank saves its
model parameters before and after training, so the test can compare the ranks' copies (buffers,
BatchNorm's running statistics, stay per rank under DDP without SyncBN)."""
import os.path as osp

import torch
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook


@HOOKS.register_module()
class SaveRankWeightsHook(Hook):

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def _save(self, runner, stage: str) -> None:
        model = getattr(runner.model, 'module', runner.model)  # unwrap DDP
        state = {k: v.detach().cpu().clone() for k, v in model.named_parameters()}
        torch.save(state, osp.join(self.out_dir, f'{stage}_rank{get_rank()}.pth'))

    def before_train(self, runner) -> None:
        self._save(runner, 'initial')

    def after_train(self, runner) -> None:
        self._save(runner, 'final')
