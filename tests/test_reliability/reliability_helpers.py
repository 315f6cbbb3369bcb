"""Helpers of the reliability tests (imported by module name: tests are not packages)."""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# the CPU-sized stock Mask2Former-EF on the synthetic optical + depth data (name of any schedule)
EF_TINY = osp.relpath(sorted(glob.glob(osp.join(
    ROOT, 'configs/baselines/mask2former-ef_r18-tiny_*_synthetic-depth-*.py')))[0], ROOT)
# one thread per process: CI has 2 cores and these tests start several processes
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PYTHONWARNINGS='ignore')


def run(args, timeout=600, check=True):
    """Run ``python args...`` in the repository root; returns (returncode, output)."""
    proc = subprocess.run([sys.executable] + list(args), cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=ENV)
    output = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, output[-4000:]
    return proc.returncode, output


def data_options(root: str) -> list:
    """--cfg-options pointing the tiny configs at a generated dataset, CPU-sized."""
    root = root.rstrip('/') + '/'
    opts = [f'{dl}.dataset.data_root={root}' for dl in ('train_dataloader', 'val_dataloader',
                                                          'test_dataloader')]
    opts += [f'{dl}.num_workers=0' for dl in ('train_dataloader', 'val_dataloader',
                                              'test_dataloader')]
    opts += [f'{dl}.persistent_workers=False' for dl in ('train_dataloader', 'val_dataloader',
                                                         'test_dataloader')]
    for ev in ('val_evaluator', 'test_evaluator'):
        opts += [f'{ev}.0.ann_file={root}annotations/panoptic_val.json',
                 f'{ev}.0.seg_prefix={root}annotations/panoptic_val/',
                 f'{ev}.1.ann_file={root}annotations/instances_val.json']
    return opts + ['train_dataloader.batch_size=2', 'default_hooks.logger.interval=1']


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def load_json(path):
    with open(path) as f:
        return json.load(f)


def save_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f)
