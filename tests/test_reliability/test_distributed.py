"""tools/dist_train.sh and tools/dist_test.sh: 2 CPU processes (gloo) through torchrun, on the
tiny PMTSeg: gradients are all-reduced (both ranks end with identical, trained weights) and the
2-process evaluation equals the single-process one."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from reliability_helpers import ENV, ROOT, data_options, free_port, run

pytestmark = pytest.mark.slow

PMTSEG = 'configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
HERE = osp.dirname(osp.abspath(__file__))


def _metrics(output):
    found = dict(re.findall(r'((?:panoptic|instance|semantic)/\w+): (-?\d+\.\d+)', output))
    assert 'panoptic/PQ' in found and 'instance/segm_mAP' in found, output[-3000:]
    return found


def _bash(args):
    env = dict(ENV, PORT=str(free_port()))
    env['PYTHONPATH'] = HERE  # rank_weights_hook, imported by the generated config
    env['PATH'] = '/usr/bin:/bin'  # no activated environment, no torchrun on PATH
    env.pop('PMTSEG_PYTHON', None)
    if osp.abspath(sys.executable) != osp.join(ROOT, ".venv", "bin", "python"):
        env['PMTSEG_PYTHON'] = sys.executable  # the scripts' choice when not the repo's .venv
    proc = subprocess.run(['bash'] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-5000:]
    return output


def _config_with_weight_dumps(folder):
    """The tiny PMTSeg plus a hook saving every rank's weights before and after training."""
    path = osp.join(folder, 'pmtseg_rank_weights.py')
    with open(path, 'w') as f:
        f.write(f"_base_ = {osp.join(ROOT, PMTSEG)!r}\n"
                "custom_imports = dict(imports=['pmtseg_mm', 'rank_weights_hook'], "
                "allow_failed_imports=False)\n"
                f"custom_hooks = [dict(type='SaveRankWeightsHook', out_dir={folder!r})]\n")
    return path


def test_two_process_gloo_train_and_test_match_single_process(synthetic_root, tmp_path):
    work = str(tmp_path / 'work')
    config = _config_with_weight_dumps(str(tmp_path))
    opts = data_options(synthetic_root)
    out = _bash(['tools/dist_train.sh', config, '2', '--work-dir', work, '--cfg-options',
                 'train_cfg.max_iters=2', 'train_cfg.val_interval=100',
                 'default_hooks.checkpoint.interval=2'] + opts)
    assert re.search(r'Iter\(train\) \[2/2\]', out)
    assert 'Distributed training: True' in out and "dist_cfg: {'backend': 'gloo'}" in out
    assert re.search(r'Iter\(val\) \[1/1\]', out)  # 2 val images split over 2 ranks
    ckpt = osp.join(work, 'iter_2.pth')
    assert osp.exists(ckpt)

    # each rank trained on its own image: equal weights afterwards need all-reduced gradients
    weights = {(stage, rank): torch.load(str(tmp_path / f'{stage}_rank{rank}.pth'))
               for stage in ('initial', 'final') for rank in (0, 1)}
    names = list(weights['final', 0])
    assert names == list(weights['final', 1]) == list(weights['initial', 0])
    assert [n for n in names if not torch.equal(weights['initial', 0][n],
                                                weights['initial', 1][n])] == []
    assert [n for n in names if not torch.equal(weights['final', 0][n],
                                                weights['final', 1][n])] == []
    changed = [n for n in names if not torch.equal(weights['initial', 0][n],
                                                   weights['final', 0][n])]
    assert len(changed) > 0.9 * len(names), (len(changed), len(names))
    saved = torch.load(ckpt, map_location='cpu')['state_dict']
    assert all(torch.equal(saved[n], weights['final', 0][n]) for n in names)

    dist_out = _bash(['tools/dist_test.sh', PMTSEG, ckpt, '2', '--work-dir',
                      str(tmp_path / 'dist_test'), '--cfg-options'] + opts)
    _, single_out = run(['tools/test.py', PMTSEG, ckpt, '--work-dir', str(tmp_path / 'test'),
                         '--cfg-options'] + opts)
    assert re.search(r'Iter\(test\) \[1/1\]', dist_out)
    assert re.search(r'Iter\(test\) \[2/2\]', single_out)
    single = _metrics(single_out)
    assert _metrics(dist_out) == single  # 2-process test of the checkpoint
    assert _metrics(out) == single  # the 2-process validation at the end of training
