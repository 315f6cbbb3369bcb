"""Let mmengine checkpoints load under torch's ``weights_only=True`` default (torch >= 2.6).

mmengine 0.10.7 checkpoints carry numpy scalars/arrays, ``collections.Counter`` and
:class:`HistoryBuffer` objects in ``message_hub``; torch's safe unpickler rejects those globals,
so ``--resume`` and ``load_from`` fail. Instead of switching safety off for possibly untrusted
files (``weights_only=False``), the data-only types are allow-listed. ``HistoryBuffer`` also
pickles its default statistics methods, which pickle as ``getattr(HistoryBuffer, 'min')``;
allowing ``builtins.getattr`` would defeat the safe unpickler, so those defaults (which
``HistoryBuffer.__setstate__`` re-registers anyway) are left out of its pickled state.
"""
import collections
from typing import List

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """Pickled state without the default statistics methods (restored by __setstate__)."""
    state = {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}
    custom = {k: v for k, v in self._statistics_methods.items() if k not in _DEFAULT_STATISTICS}
    if custom:
        state['statistics_methods'] = custom
    return state


def checkpoint_safe_globals() -> List[object]:
    """Data-only globals that mmengine checkpoints contain."""
    multiarray = np.core.multiarray
    dtypes = [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                          np.uint8, np.uint16, np.uint32, np.uint64,
                                          np.float16, np.float32, np.float64)]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, HistoryBuffer,
            collections.Counter] + dtypes


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` and make ``HistoryBuffer`` pickle without
    function references. Idempotent."""
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(checkpoint_safe_globals())
