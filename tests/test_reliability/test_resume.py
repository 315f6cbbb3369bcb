"""Resume after a real SIGKILL gives the same weights and metrics as an uninterrupted run."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import torch

from reliability_helpers import EF_TINY, ENV, ROOT, data_options, run

ITERS = 4


def _args(data_root, work_dir):
    return ['tools/train.py', EF_TINY, '--work-dir', work_dir, '--cfg-options',
            f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
            'default_hooks.checkpoint.interval=2', 'randomness.seed=0'] + data_options(data_root)


def _metrics(output):
    found = dict(re.findall(r'((?:panoptic|instance|semantic)/\w+): (-?\d+\.\d+)', output))
    assert 'panoptic/PQ' in found and 'semantic/mIoU' in found, output[-3000:]
    return found


def test_sigkill_then_resume_equals_uninterrupted(synthetic_root, tmp_path):
    ref_dir, cut_dir = str(tmp_path / 'ref'), str(tmp_path / 'cut')
    _, ref_out = run(_args(synthetic_root, ref_dir))

    proc = subprocess.Popen([sys.executable] + _args(synthetic_root, cut_dir), cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pointer = osp.join(cut_dir, 'last_checkpoint')
    try:
        while proc.poll() is None:  # kill as soon as the N/2 checkpoint is complete
            if osp.exists(pointer) and open(pointer).read().endswith('iter_2.pth'):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, 'the run finished before it could be killed'
    assert not osp.exists(osp.join(cut_dir, f'iter_{ITERS}.pth'))

    _, cut_out = run(_args(synthetic_root, cut_dir) + ['--resume'])
    assert re.search(r'resumed', cut_out, re.I) and not re.search(r'Iter\(train\) \[ ?[12]/',
                                                                    cut_out)
    ref = torch.load(osp.join(ref_dir, f'iter_{ITERS}.pth'), map_location='cpu')
    cut = torch.load(osp.join(cut_dir, f'iter_{ITERS}.pth'), map_location='cpu')
    assert ref['state_dict'].keys() == cut['state_dict'].keys()
    different = [k for k in ref['state_dict']
                 if not torch.equal(ref['state_dict'][k], cut['state_dict'][k])]
    assert different == []  # bit-identical weights (1 thread, same seed, restored RNG state)
    assert _metrics(cut_out) == _metrics(ref_out)
    assert os.listdir(cut_dir)  # the work dir holds the resumed run's checkpoints and logs
