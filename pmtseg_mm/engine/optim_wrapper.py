"""bf16 autocast training on CPU (mmengine's AmpOptimWrapper requires a GPU)."""
from contextlib import contextmanager

import torch
from mmdet.registry import OPTIM_WRAPPERS
from mmengine.optim import OptimWrapper


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
