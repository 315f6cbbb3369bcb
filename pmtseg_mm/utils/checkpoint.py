"""Let mmengine checkpoints load under torch's ``weights_only=True`` default (torch >= 2.6).

mmengine 0.10.7 saves numpy scalars/arrays and :class:`HistoryBuffer` objects in the
checkpoint's ``message_hub``; torch's safe unpickler rejects those globals, so ``--resume`` and
``load_from`` fail. Instead of switching safety off for possibly untrusted files
(``weights_only=False``), the few data-only types these checkpoints need are allow-listed.
"""
from typing import List

import numpy as np
import torch

_REGISTERED = False


def checkpoint_safe_globals() -> List[object]:
    """Data-only globals that mmengine checkpoints contain."""
    from mmengine.logging import HistoryBuffer
    multiarray = np.core.multiarray
    dtypes = [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                          np.uint8, np.uint16, np.uint32, np.uint64,
                                          np.float16, np.float32, np.float64)]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, HistoryBuffer
            ] + dtypes


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load(weights_only=True)``."""
    global _REGISTERED
    if _REGISTERED or not hasattr(torch.serialization, 'add_safe_globals'):
        return
    torch.serialization.add_safe_globals(checkpoint_safe_globals())
    _REGISTERED = True
