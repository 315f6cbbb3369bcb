"""Optimizer wrappers: bf16 autocast training on CPU (mmengine's AmpOptimWrapper requires a GPU)
and a constructor that keeps parameter groups few."""
from contextlib import contextmanager
from typing import Dict, List, Optional, Union

import torch
from mmdet.registry import OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from torch import nn


@OPTIM_WRAPPERS.register_module()
class CPUBF16OptimWrapper(OptimWrapper):
    """:class:`OptimWrapper` whose forward runs under ``torch.autocast('cpu', bfloat16)``.

    bfloat16 has float32's exponent range, so no loss scaling is needed; parameters, gradients
    and optimizer states stay float32. ``tools/train.py --amp`` picks it on machines without
    CUDA (and mmengine's ``AmpOptimWrapper`` with a GPU).
    """

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GroupedOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's ``DefaultOptimWrapperConstructor`` with one parameter group per distinct set of
    options instead of one group per parameter.

    With a ``paramwise_cfg`` mmengine gives every parameter its own group (484 for the tiny
    PMTSeg), so the optimizer runs its update once per tensor from Python and the multi-tensor
    (``foreach``) kernels never see more than one tensor. Groups whose options (lr, weight decay,
    ...) are equal are merged here, in order of first appearance: each parameter gets the same
    options and therefore the same updates, and schedulers, which scale every group alike, act
    the same. The optimizer's state dict has fewer groups, so a checkpoint's optimizer state
    resumes only under the constructor that wrote it.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '',
                   is_dcn_module: Optional[Union[int, float]] = None) -> None:
        if prefix:  # mmengine's recursion over the submodules
            super().add_params(params, module, prefix, is_dcn_module)
            return
        per_param: List[dict] = []
        super().add_params(per_param, module, prefix, is_dcn_module)
        params.extend(merge_param_groups(per_param))


def merge_param_groups(groups: List[dict]) -> List[dict]:
    """Merge parameter groups with equal options (every key but ``params``), keeping the order
    of first appearance of groups and of parameters."""
    merged: Dict[tuple, dict] = {}
    for group in groups:
        options = {k: v for k, v in group.items() if k != 'params'}
        key = tuple(sorted((k, repr(v)) for k, v in options.items()))
        merged.setdefault(key, dict(options, params=[]))['params'].extend(group['params'])
    return list(merged.values())
