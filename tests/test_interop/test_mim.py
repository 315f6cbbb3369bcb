"""`mim train pmtseg_mm CONFIG` (1 iteration) and `mim test pmtseg_mm CONFIG --checkpoint` work
from the install of tools/install.sh (PEP 660 editable + the site-packages link mim looks up)."""
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from pmtseg_mm.datasets.synthetic import generate_synthetic

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _data_options(root: str) -> list:
    root = root + '/'
    opts = []
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={root}', f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    for loop in ('val', 'test'):
        opts += [f'{loop}_evaluator.0.ann_file={root}annotations/panoptic_val.json',
                 f'{loop}_evaluator.0.seg_prefix={root}annotations/panoptic_val/',
                 f'{loop}_evaluator.1.ann_file={root}annotations/instances_val.json']
    return opts + ['train_dataloader.batch_size=2']


def _mim(args: list, cwd: str) -> str:
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, '-m', 'mim'] + args, cwd=cwd, capture_output=True,
                          text=True, timeout=900, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def test_mim_train_then_test(tmp_path):
    config = sorted(glob.glob(osp.join(ROOT, 'configs', 'baselines', 'mask2former-ef_r18-tiny*.py')))[0]
    data_root = str(tmp_path / 'data')
    generate_synthetic(data_root, num_train=2, num_val=1, size=64, aux='depth', seed=0,
                       progress=False)
    work_dir = str(tmp_path / 'work')
    # run from elsewhere than the repository: mim must find the tools through the install
    out = _mim(['train', 'pmtseg_mm', config, '--work-dir', work_dir, '--cfg-options',
                'train_cfg.max_iters=1', 'train_cfg.val_interval=1',
                'default_hooks.checkpoint.interval=1'] + _data_options(data_root), str(tmp_path))
    assert re.search(r'site-packages/pmtseg_mm/\.mim/tools/train\.py', out)
    assert re.search(r'Iter\(train\) \[1/1\]', out)
    validated = _nine(out)
    ckpt = osp.join(work_dir, 'iter_1.pth')
    assert osp.isfile(ckpt)
    out = _mim(['test', 'pmtseg_mm', config, '--checkpoint', ckpt, '--work-dir', work_dir,
                '--cfg-options'] + _data_options(data_root), str(tmp_path))
    assert 'Testing finished successfully' in out
    # mim test of the checkpoint reports what mim train's validation of the same weights did
    assert _nine(out) == validated


def _nine(output: str) -> dict:
    keys = ('panoptic/PQ', 'panoptic/SQ', 'panoptic/RQ', 'instance/segm_mAP',
            'instance/segm_mAP_50', 'instance/segm_mAP_75', 'semantic/mIoU', 'semantic/mAcc',
            'semantic/OA')
    found = dict(re.findall(r'((?:panoptic|instance|semantic)/\w+): (-?\d+\.\d+)', output))
    assert set(keys) <= set(found), output[-3000:]
    return {key: found[key] for key in keys}
