"""Stop training on a non-finite loss before it reaches the weights."""
import math
from typing import Callable, Dict, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise :class:`FloatingPointError` naming the loss term(s) and the iteration as soon as a
    loss is NaN/±Inf, *before* the backward pass and the optimizer step.

    mmdet's ``CheckInvalidLossHook`` looks at the total loss after the update (the weights are
    already poisoned) and every ``interval`` iterations; this hook checks every term of every
    iteration by wrapping the model's ``parse_losses`` (called by mmengine's ``train_step`` for
    plain and DDP-wrapped models alike) for the duration of training. Nothing of the failing
    iteration is saved: the exception leaves the loop before any checkpoint hook runs.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._original: Optional[Callable] = None
        self._model = None

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        original = model.parse_losses

        def parse_losses(losses: Dict[str, torch.Tensor]):
            bad = []
            for name, value in losses.items():
                values = value if isinstance(value, (list, tuple)) else [value]
                for v in values:
                    if isinstance(v, torch.Tensor) and not torch.isfinite(v.detach()).all():
                        bad.append(f'{name}={v.detach().float().mean().item()}')
                        break
                    if isinstance(v, float) and not math.isfinite(v):
                        bad.append(f'{name}={v}')
                        break
            if bad:
                raise FloatingPointError(
                    f'non-finite loss at iteration {runner.iter + 1}: {", ".join(bad)}. Training '
                    'stopped before the update: the weights and the last checkpoint are intact. '
                    'Check the inputs (NaN/Inf pixels), the learning rate and the loss weights; '
                    'resume from the last checkpoint with --resume')
            return original(losses)

        model.parse_losses = parse_losses
        self._model, self._original = model, original

    def after_train(self, runner) -> None:
        if self._model is not None:
            del self._model.parse_losses  # the instance attribute: back to the class method
            self._model = self._original = None
