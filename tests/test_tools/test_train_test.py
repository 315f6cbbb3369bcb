"""tools/train.py and tools/test.py end to end on generated data: train, evaluate, resume, pictures."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from pmtseg_mm.datasets.synthetic import generate_synthetic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
EF_TINY = 'configs/baselines/mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
METRIC_KEYS = ('panoptic/PQ', 'panoptic/SQ', 'panoptic/RQ', 'instance/segm_mAP',
               'instance/segm_mAP_50', 'instance/segm_mAP_75', 'semantic/mIoU', 'semantic/mAcc',
               'semantic/OA')


def _data_options(data_root: str) -> list:
    root = data_root + '/'
    return [
        f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
        'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
        'test_dataloader.num_workers=0', 'test_dataloader.persistent_workers=False',
        f'val_evaluator.0.ann_file={root}annotations/panoptic_val.json',
        f'val_evaluator.0.seg_prefix={root}annotations/panoptic_val/',
        f'val_evaluator.1.ann_file={root}annotations/instances_val.json',
        f'test_evaluator.0.ann_file={root}annotations/panoptic_val.json',
        f'test_evaluator.0.seg_prefix={root}annotations/panoptic_val/',
        f'test_evaluator.1.ann_file={root}annotations/instances_val.json',
        'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2',
    ]


def _run(args: list) -> str:
    proc = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONWARNINGS='ignore'))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    data_root = str(tmp_path_factory.mktemp('synthetic'))
    generate_synthetic(data_root, num_train=4, num_val=2, size=64, aux='depth', seed=0,
                       progress=False)
    work_dir = str(tmp_path_factory.mktemp('work'))
    out = _run(['tools/train.py', EF_TINY, '--work-dir', work_dir, '--cfg-options',
                'train_cfg.max_iters=2', 'train_cfg.val_interval=2'] + _data_options(data_root))
    return data_root, work_dir, out


def test_train_two_iterations_and_evaluate(trained):
    _, work_dir, out = trained
    assert osp.exists(osp.join(work_dir, 'iter_2.pth'))
    assert re.search(r'Iter\(train\) \[2/2\]', out)
    for key in METRIC_KEYS:
        assert re.search(re.escape(key) + r': -?\d+\.\d+', out), f'{key} missing'


def test_checkpoint_loads_with_weights_only_and_resumes(trained):
    data_root, work_dir, _ = trained
    ckpt = osp.join(work_dir, 'iter_2.pth')
    # torch >= 2.6 defaults to weights_only=True; the allow-list (registered on import) is enough
    state = torch.load(ckpt, map_location='cpu')
    assert state['meta']['iter'] == 2
    # ... and it is needed: without it the safe unpickler rejects the mmengine checkpoint
    bare = subprocess.run(
        [sys.executable, '-c', f'import torch; torch.load({ckpt!r}, map_location="cpu")'],
        capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0 and 'weights_only' in bare.stderr
    out = _run(['tools/train.py', EF_TINY, '--work-dir', work_dir, '--resume', ckpt,
                '--cfg-options', 'train_cfg.max_iters=3', 'train_cfg.val_interval=10'] +
               _data_options(data_root))
    assert 'resumed' in out.lower() and re.search(r'Iter\(train\) \[3/3\]', out)
    assert not re.search(r'Iter\(train\) \[[12]/3\]', out)  # continued from iteration 2
    assert osp.exists(osp.join(work_dir, 'iter_3.pth'))


def test_test_tool_prints_metrics_and_saves_pictures(trained):
    data_root, work_dir, _ = trained
    show_dir = osp.join(work_dir, 'pictures')
    out = _run(['tools/test.py', EF_TINY, osp.join(work_dir, 'iter_2.pth'), '--work-dir',
                osp.join(work_dir, 'test'), '--show-dir', show_dir, '--show-num', '1',
                '--cfg-options'] + _data_options(data_root))
    for key in METRIC_KEYS:
        assert re.search(re.escape(key) + r': -?\d+\.\d+', out), f'{key} missing'
    pictures = os.listdir(show_dir)
    assert len(pictures) == 1 and pictures[0].endswith('.png')


def test_test_tool_task_subset_and_standard_dumps(trained):
    data_root, work_dir, _ = trained
    dump = osp.join(work_dir, 'dump')
    out = _run(['tools/test.py', EF_TINY, osp.join(work_dir, 'iter_2.pth'), '--work-dir',
                osp.join(work_dir, 'test_dump'), '--tasks', 'panoptic', 'semantic', '--dump-dir',
                dump, '--cfg-options'] + _data_options(data_root))
    assert re.search(r'panoptic/PQ: -?\d+\.\d+', out) and re.search(r'semantic/mIoU: \d', out)
    assert 'instance/segm_mAP' not in out  # the instance evaluator was dropped
    assert sorted(os.listdir(osp.join(dump, 'semantic'))) == ['val_00000.png', 'val_00001.png']
    assert osp.exists(osp.join(dump, 'panoptic.panoptic.json'))
    assert len(os.listdir(osp.join(dump, 'panoptic.panoptic'))) == 2
