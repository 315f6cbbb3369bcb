"""Let mmengine checkpoints load under torch's ``weights_only=True`` default (torch >= 2.6).

mmengine 0.10.7 checkpoints carry numpy scalars/arrays, ``collections.Counter`` and
:class:`HistoryBuffer` objects in ``message_hub``; torch's safe unpickler rejects those globals,
so ``--resume`` and ``load_from`` fail. Instead of switching safety off for possibly untrusted
files (``weights_only=False``), the data-only types are allow-listed. ``HistoryBuffer`` also
pickles its default statistics methods, which pickle as ``getattr(HistoryBuffer, 'min')``;
allowing ``builtins.getattr`` would defeat the safe unpickler, so those defaults (which
``HistoryBuffer.__setstate__`` re-registers anyway) are left out of its pickled state.

Files the safe unpickler refuses give one :class:`UnsafeCheckpointError` naming the file and the
refused global (never torch's advice to retry with ``weights_only=False``), and checkpoints are
written atomically (temporary file + rename) so a killed save never leaves a half-written file
that ``--resume`` would pick up.
"""
import collections
import os
import os.path as osp
import pickle
import re
from typing import Any, List, Optional

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from ..compat import numpy_pickle_globals

_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')


def _history_buffer_getstate(self: HistoryBuffer) -> dict:
    """Pickled state without the default statistics methods (restored by __setstate__)."""
    state = {k: v for k, v in self.__dict__.items() if k != 'statistics_methods'}
    custom = {k: v for k, v in self._statistics_methods.items() if k not in _DEFAULT_STATISTICS}
    if custom:
        state['statistics_methods'] = custom
    return state


def checkpoint_safe_globals() -> List[object]:
    """Data-only globals that mmengine checkpoints contain (numpy's pickling functions under the
    names of numpy 1 and 2: :func:`pmtseg_mm.compat.numpy_pickle_globals`)."""
    dtypes = [type(np.dtype(t)) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64,
                                          np.uint8, np.uint16, np.uint32, np.uint64,
                                          np.float16, np.float32, np.float64)]
    return numpy_pickle_globals() + [np.ndarray, np.dtype, HistoryBuffer,
                                     collections.Counter] + dtypes


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` and make ``HistoryBuffer`` pickle without
    function references. Idempotent."""
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(checkpoint_safe_globals())
    register_safe_checkpoint_loader()
    register_atomic_checkpoint_saving()


class UnsafeCheckpointError(ValueError):
    """A checkpoint that the safe (``weights_only=True``) unpickler refuses."""


_GLOBAL = re.compile(r'GLOBAL ([\w.]+)')


def safe_torch_load(filename: str, map_location=None) -> Any:
    """``torch.load(..., weights_only=True)`` with the package allow-list and one clear error.

    A file holding objects outside the allow-list (for example a pickle that would run code) or
    that is not a checkpoint at all raises :class:`UnsafeCheckpointError` naming the file and,
    when torch reports it, the refused global. The file is never loaded unsafely.
    """
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as err:  # noqa: BLE001  (any decoder failure of arbitrary bytes)
        text = str(err)
        found = _GLOBAL.search(text)
        if found is not None:
            raise UnsafeCheckpointError(
                f'refusing to load checkpoint {filename}: it contains objects that are not '
                f'allowed in a safe checkpoint (global `{found.group(1)}`). pmtseg_mm loads '
                'checkpoints with weights_only=True and its allow-list of data types only, and '
                'will not load this file unsafely; only tensors, numbers, strings and the '
                'mmengine/numpy data types are accepted') from None
        if 'Weights only load failed' in text or isinstance(err, pickle.UnpicklingError):
            reason = text.split('WeightsUnpickler error:')[-1].strip().splitlines()[0][:200]
        else:
            reason = text.strip().splitlines()[0][:200] if text.strip() else type(err).__name__
        raise UnsafeCheckpointError(
            f'refusing to load checkpoint {filename}: it is not a valid safe checkpoint '
            f'(truncated, corrupted or not a torch file: {reason}). pmtseg_mm loads checkpoints '
            'with weights_only=True only and will not load this file unsafely') from None


def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's local checkpoint loader, through :func:`safe_torch_load`."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file {filename} not found')
    return safe_torch_load(filename, map_location)


def register_safe_checkpoint_loader() -> None:
    """Make mmengine (``load_from``, ``--resume``, ``load_checkpoint``) load local files with
    :func:`load_from_local`. Idempotent."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are atomic: the bytes go to a temporary file
    in the same folder, are flushed to disk, then renamed over the target. A process killed
    while writing (a checkpoint, or the ``last_checkpoint`` pointer that ``--resume`` follows)
    leaves the previous file intact and at most a ``*.tmp<pid>`` file behind."""

    def put(self, obj: bytes, filepath) -> None:
        self._atomic_write(str(filepath), obj, 'wb')

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        self._atomic_write(str(filepath), obj.encode(encoding), 'wb')

    @staticmethod
    def _atomic_write(filepath: str, data: bytes, mode: str) -> None:
        folder = osp.dirname(filepath)
        if folder:
            os.makedirs(folder, exist_ok=True)
        tmp = f'{filepath}.tmp{os.getpid()}'
        try:
            with open(tmp, mode) as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        finally:
            if osp.exists(tmp):
                os.remove(tmp)


def register_atomic_checkpoint_saving() -> None:
    """Register :class:`AtomicLocalBackend` as mmengine's backend for local paths (used by
    ``save_checkpoint`` and ``CheckpointHook``). Idempotent."""
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


_CKPT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (no path) should continue from, or None.

    mmengine follows the ``last_checkpoint`` pointer, which its CheckpointHook rewrites in place:
    a process killed in that instant leaves it empty or cut. This follows the pointer when it
    names an existing file and otherwise falls back to the highest-numbered complete
    ``iter_N.pth`` / ``epoch_N.pth`` (checkpoints themselves are written atomically).
    """
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            target = f.read().strip()
        if target and osp.isfile(target):
            return target
    if not osp.isdir(work_dir):
        return None
    found = [(int(m.group(2)), name) for name in os.listdir(work_dir)
             for m in [_CKPT_NAME.match(name)] if m]
    return osp.join(work_dir, max(found)[1]) if found else None
