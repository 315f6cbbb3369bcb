"""Safe checkpoint loading with one clear refusal; atomic checkpoint writes under SIGKILL."""
import os
import os.path as osp
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint, find_latest_checkpoint, save_checkpoint

from pmtseg_mm.utils.checkpoint import (UnsafeCheckpointError, find_resume_checkpoint,
                                        safe_torch_load)

from reliability_helpers import ENV, ROOT


class _Payload:
    """Pickles as a call to os.system: loading it unsafely would run a command."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def _assert_clear(err, path):
    text = str(err)
    assert path in text and 'will not load this file unsafely' in text
    assert 'weights_only=False' not in text and 'add_safe_globals' not in text


def test_code_running_pickle_is_refused_naming_file_and_global(tmp_path):
    marker = str(tmp_path / 'pwned')
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(2)}, 'meta': _Payload(marker)}, path)
    for load in (lambda: safe_torch_load(path), lambda: _load_checkpoint(path, 'cpu')):
        with pytest.raises(UnsafeCheckpointError) as err:
            load()
        _assert_clear(err.value, path)
        assert 'not allowed' in str(err.value) and 'system' in str(err.value)
    assert not osp.exists(marker)  # the payload never ran


@pytest.mark.parametrize('content', [bytes(np.random.default_rng(seed).integers(0, 256, 256,
                                                                           dtype=np.uint8))
                                     for seed in range(8)] + [b'PK\x03\x04garbage', b''])
def test_random_or_truncated_bytes_are_refused(tmp_path, content):
    path = str(tmp_path / 'bad.pth')
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(path, 'cpu')
    _assert_clear(err.value, path)
    assert 'not a valid safe checkpoint' in str(err.value)


def test_truncated_real_checkpoint_is_refused(tmp_path):
    good = str(tmp_path / 'good.pth')
    torch.save({'state_dict': {'w': torch.arange(1000.)}}, good)
    assert torch.equal(_load_checkpoint(good, 'cpu')['state_dict']['w'], torch.arange(1000.))
    data = open(good, 'rb').read()
    bad = str(tmp_path / 'half.pth')
    with open(bad, 'wb') as f:
        f.write(data[:len(data) // 2])
    with pytest.raises(UnsafeCheckpointError) as err:
        _load_checkpoint(bad, 'cpu')
    _assert_clear(err.value, bad)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        _load_checkpoint(str(tmp_path / 'missing.pth'), 'cpu')


_KILL_DURING_SAVE = r'''
import os, signal, sys, torch
import pmtseg_mm  # noqa: F401  (atomic local backend)
from mmengine.runner.checkpoint import save_checkpoint
work = sys.argv[1]
save_checkpoint({'w': torch.zeros(1000)}, f'{work}/iter_2.pth')
with open(f'{work}/last_checkpoint', 'w') as f:  # as mmengine's CheckpointHook writes it
    f.write(f'{work}/iter_2.pth')
def die(fd):  # the bytes are in the temporary file; the process dies before the rename
    os.kill(os.getpid(), signal.SIGKILL)
os.fsync = die
save_checkpoint({'w': torch.ones(1000)}, f'{work}/iter_4.pth')
'''


@pytest.mark.slow
def test_sigkill_during_save_leaves_previous_checkpoint(tmp_path):
    work = str(tmp_path)
    proc = subprocess.run([sys.executable, '-c', _KILL_DURING_SAVE, work], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not osp.exists(osp.join(work, 'iter_4.pth'))
    leftovers = [n for n in os.listdir(work) if '.tmp' in n]
    assert len(leftovers) == 1  # the dead process's temporary file, never picked up
    latest = find_resume_checkpoint(work)
    assert latest == find_latest_checkpoint(work) == osp.join(work, 'iter_2.pth')
    assert torch.equal(_load_checkpoint(latest, 'cpu')['w'], torch.zeros(1000))


@pytest.mark.parametrize('pointer', ['', 'iter_', None])
def test_cut_or_missing_pointer_falls_back_to_latest_complete_checkpoint(tmp_path, pointer):
    work = str(tmp_path)
    for it in (2, 10, 4):
        save_checkpoint({'w': torch.full((3, ), float(it))}, osp.join(work, f'iter_{it}.pth'))
    (tmp_path / 'iter_12.pth.tmp123').write_bytes(b'half')  # a killed save
    if pointer is not None:  # a kill while CheckpointHook rewrote the pointer in place
        (tmp_path / 'last_checkpoint').write_text(osp.join(work, pointer) if pointer else '')
    assert find_resume_checkpoint(work) == osp.join(work, 'iter_10.pth')
    (tmp_path / 'last_checkpoint').write_text(osp.join(work, 'iter_4.pth'))
    assert find_resume_checkpoint(work) == osp.join(work, 'iter_4.pth')  # a valid pointer wins
    assert find_resume_checkpoint(str(tmp_path / 'nothing')) is None
