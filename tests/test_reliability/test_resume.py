"""Resume after a real SIGKILL gives the same weights, losses and metrics as an uninterrupted run,
for the tiny PMTSeg (PSH task sampling with torch.multinomial, point sampling) and for the same
model trained with ModalityDropout (numpy draws in the data pipeline)."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from reliability_helpers import ENV, ROOT, data_options, run

pytestmark = pytest.mark.slow

ITERS = 4
PMTSEG = 'configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
MODDROP = 'configs/pmtseg/pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128.py'
# ModalityDropout is step 3 of the moddrop training pipeline; p = 0.5 instead of 0.3 so that
# the 2 images x 4 iterations almost surely drop depth after the cut (p(no drop) = 1/16)
EXTRA = {PMTSEG: [], MODDROP: ['train_dataloader.dataset.pipeline.3.prob=0.5']}


def _args(config, data_root, work_dir):
    return ['tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
            f'train_cfg.max_iters={ITERS}', f'train_cfg.val_interval={ITERS}',
            'default_hooks.checkpoint.interval=2', 'randomness.seed=0'] + data_options(
                data_root) + EXTRA[config]


NINE = ('panoptic/PQ', 'panoptic/SQ', 'panoptic/RQ', 'instance/segm_mAP', 'instance/segm_mAP_50',
        'instance/segm_mAP_75', 'semantic/mIoU', 'semantic/mAcc', 'semantic/OA')


def _metrics(output):
    found = dict(re.findall(r'((?:panoptic|instance|semantic)/\w+): (-?\d+\.\d+|nan)', output))
    assert set(NINE) <= set(found), output[-3000:]
    return found


def _losses(output, it):
    """Every logged loss term of training iteration ``it`` (logger interval 1)."""
    [line] = [ln for ln in output.splitlines() if re.search(rf'Iter\(train\) \[ ?{it}/{ITERS}\]',
                                                           ln)]
    found = dict(re.findall(r'(\w*loss\w*): (-?\d+\.\d+)', line))
    assert 'loss' in found and len(found) > 3, line
    return found


@pytest.mark.parametrize('config', [PMTSEG, MODDROP], ids=['pmtseg', 'moddrop'])
def test_sigkill_then_resume_equals_uninterrupted(config, synthetic_root, tmp_path):
    ref_dir, cut_dir = str(tmp_path / 'ref'), str(tmp_path / 'cut')
    _, ref_out = run(_args(config, synthetic_root, ref_dir))

    proc = subprocess.Popen([sys.executable] + _args(config, synthetic_root, cut_dir), cwd=ROOT,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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

    _, cut_out = run(_args(config, synthetic_root, cut_dir) + ['--resume'])
    assert re.search(r'resumed', cut_out, re.I) and not re.search(r'Iter\(train\) \[ ?[12]/',
                                                                    cut_out)
    # the iterations after the cut draw the same task prompts, points and dropped modalities
    for it in (3, 4):
        assert _losses(cut_out, it) == _losses(ref_out, it)
    ref = torch.load(osp.join(ref_dir, f'iter_{ITERS}.pth'), map_location='cpu')
    cut = torch.load(osp.join(cut_dir, f'iter_{ITERS}.pth'), map_location='cpu')
    assert ref['state_dict'].keys() == cut['state_dict'].keys()
    different = [k for k in ref['state_dict']
                 if not torch.equal(ref['state_dict'][k], cut['state_dict'][k])]
    assert different == []  # bit-identical weights (1 thread, same seed, restored RNG state)
    assert _metrics(cut_out) == _metrics(ref_out)
    assert os.listdir(cut_dir)  # the work dir holds the resumed run's checkpoints and logs
