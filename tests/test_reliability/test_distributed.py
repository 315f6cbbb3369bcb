"""tools/dist_train.sh and tools/dist_test.sh: 2 CPU processes (gloo) through torchrun."""
import os.path as osp
import re
import subprocess
import sys

from reliability_helpers import EF_TINY, ENV, ROOT, data_options, free_port, run


def _metrics(output):
    found = dict(re.findall(r'((?:panoptic|instance|semantic)/\w+): (-?\d+\.\d+)', output))
    assert 'panoptic/PQ' in found and 'instance/segm_mAP' in found, output[-3000:]
    return found


def _bash(args):
    env = dict(ENV, PORT=str(free_port()))
    env['PATH'] = '/usr/bin:/bin'  # no activated environment, no torchrun on PATH
    env.pop('PMTSEG_PYTHON', None)
    if osp.abspath(sys.executable) != osp.join(ROOT, ".venv", "bin", "python"):
        env['PMTSEG_PYTHON'] = sys.executable  # the scripts' choice when not the repo's .venv
    proc = subprocess.run(['bash'] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    return output


def test_two_process_gloo_train_and_test_match_single_process(synthetic_root, tmp_path):
    work = str(tmp_path / 'work')
    opts = data_options(synthetic_root)
    out = _bash(['tools/dist_train.sh', EF_TINY, '2', '--work-dir', work, '--cfg-options',
                 'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
                 'default_hooks.checkpoint.interval=2'] + opts)
    assert re.search(r'Iter\(train\) \[2/2\]', out)
    assert 'Distributed training: True' in out and "dist_cfg: {'backend': 'gloo'}" in out
    assert re.search(r'Iter\(val\) \[1/1\]', out)  # 2 val images split over 2 ranks
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.exists(ckpt)
    dist_out = _bash(['tools/dist_test.sh', EF_TINY, ckpt, '2', '--work-dir',
                      str(tmp_path / 'dist_test'), '--cfg-options'] + opts)
    _, single_out = run(['tools/test.py', EF_TINY, ckpt, '--work-dir', str(tmp_path / 'test'),
                         '--cfg-options'] + opts)
    assert re.search(r'Iter\(test\) \[1/1\]', dist_out)
    assert re.search(r'Iter\(test\) \[2/2\]', single_out)
    single = _metrics(single_out)
    assert _metrics(dist_out) == single  # 2-process test of the checkpoint
    assert _metrics(out) == single  # the 2-process validation at the end of training
    assert float(single['semantic/mIoU']) >= 0
