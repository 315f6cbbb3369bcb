"""Progress of a whole-scene run kept next to its outputs, so a killed run resumes.

``<out_prefix>_progress/`` holds ``state.json`` (the run's fingerprint and the finished blocks)
and one ``block_<i>.npz`` per finished block: its semantic labels, the number of its windows
skipped for nodata, and the window instances it found (still to be joined across blocks). Every
file is written to a temporary name and renamed, and ``state.json`` is rewritten only after the
block file exists, so a SIGKILL at any moment leaves a state that names finished blocks only.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from .instances import WindowInstance

STATE_VERSION = 1


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, shapes, dtypes and values)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f'{name}:{array.dtype}:{array.shape}'.encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def file_digest(path: str) -> str:
    """SHA-256 of a file's bytes (an ONNX graph: its weights and structure)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def file_identity(path: str) -> Dict[str, object]:
    """What identifies an input file without reading it: absolute path, size and mtime."""
    stat = os.stat(path)
    return dict(path=osp.abspath(path), bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)


class SceneProgress:
    """Finished blocks of one run; refuses to resume a run of other inputs, model or options.

    Args:
        folder: The progress folder (``<out_prefix>_progress``).
        fingerprint: JSON-serialisable description of the run (model digest, config, inputs,
            options); a stored state with another fingerprint raises unless ``restart``.
        restart: Discard any stored progress.
    """

    def __init__(self, folder: str, fingerprint: Mapping[str, object], restart: bool) -> None:
        self.folder = folder
        self.fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back from disk
        self.done: Dict[int, int] = {}  # block index -> windows skipped for nodata
        state_path = osp.join(folder, 'state.json')
        if restart and osp.isdir(folder):
            shutil.rmtree(folder)
        if osp.isfile(state_path):
            with open(state_path) as f:
                state = json.load(f)
            stored = state.get('fingerprint', {})
            if stored != self.fingerprint:
                changed = sorted(k for k in set(self.fingerprint) | set(stored)
                                 if stored.get(k) != self.fingerprint.get(k))
                raise ValueError(
                    f'{folder} holds the progress of a run with another {", ".join(changed)}; '
                    'rerun with restart=True (--restart) to discard it and start over')
            self.done = {int(k): int(v) for k, v in state['done'].items()}
        os.makedirs(folder, exist_ok=True)

    def _block_path(self, index: int) -> str:
        return osp.join(self.folder, f'block_{index}.npz')

    def save_block(self, index: int, labels: np.ndarray, instances: Sequence[WindowInstance],
                   skipped: int) -> None:
        """Store a finished block, then record it in ``state.json``."""
        masks = [i.mask for i in instances]
        arrays = dict(
            labels=labels, skipped=np.array(skipped),
            inst_label=np.array([i.label for i in instances], np.int64),
            inst_score=np.array([i.score for i in instances], np.float64),
            inst_window=np.array([i.window for i in instances], np.int64).reshape(-1, 4),
            inst_box=np.array([i.box for i in instances], np.int64).reshape(-1, 4),
            inst_masks=np.concatenate([m.ravel() for m in masks]) if masks else np.zeros(0, bool))
        tmp = self._block_path(index) + '.tmp.npz'
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, self._block_path(index))
        self.done[index] = skipped
        tmp_state = osp.join(self.folder, 'state.json.tmp')
        with open(tmp_state, 'w') as f:
            json.dump(dict(version=STATE_VERSION, fingerprint=self.fingerprint,
                           done={str(k): v for k, v in sorted(self.done.items())}), f)
        os.replace(tmp_state, osp.join(self.folder, 'state.json'))

    def load_block(self, index: int) -> Tuple[np.ndarray, List[WindowInstance]]:
        """The semantic labels and the window instances of a finished block."""
        with np.load(self._block_path(index)) as data:
            boxes, flat = data['inst_box'], data['inst_masks']
            instances, offset = [], 0
            for label, score, window, box in zip(data['inst_label'], data['inst_score'],
                                                 data['inst_window'], boxes):
                shape = (int(box[2] - box[0]), int(box[3] - box[1]))
                size = shape[0] * shape[1]
                instances.append(WindowInstance(
                    int(label), float(score), tuple(int(v) for v in window),
                    tuple(int(v) for v in box), flat[offset:offset + size].reshape(shape)))
                offset += size
            return data['labels'], instances

    def remove(self) -> None:
        """Delete the progress once the outputs are complete."""
        shutil.rmtree(self.folder, ignore_errors=True)
