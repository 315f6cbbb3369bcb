"""The mmseg side through the tools: panoptic_to_semantic.py on a generated dataset (checked
pixel by pixel), then the CPU-sized UPerNet config trained by tools/train.py and tested by
tools/test.py with mmseg's IoUMetric, whose mIoU must equal a confusion matrix computed here."""
import contextlib
import importlib.util
import io
import json
import os.path as osp
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint
from panopticapi.utils import rgb2id

from pmtseg_mm.datasets.synthetic import generate_synthetic

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
UPERNET = 'configs/mmseg/upernet_dual-r18-tiny-concat_1xb4-300it_synthetic-depth-128x128.py'
CLASSES = ['building', 'tree', 'car', 'road', 'grass', 'water']
ITERS = 4


def _load_tool():
    path = osp.join(ROOT, 'tools', 'dataset_converters', 'panoptic_to_semantic.py')
    spec = importlib.util.spec_from_file_location('panoptic_to_semantic_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _expected_semantic(root, split, ann):
    """Label map of one panoptic annotation: index of its category in the JSON, 255 = void."""
    with open(osp.join(root, 'annotations', f'panoptic_{split}.json')) as f:
        categories = json.load(f)['categories']
    label_of = {c['id']: i for i, c in enumerate(categories)}
    ids = rgb2id(cv2.imread(osp.join(root, 'annotations', f'panoptic_{split}',
                                     ann['file_name']))[..., ::-1])
    expected = np.full(ids.shape, 255, np.uint8)
    for seg in ann['segments_info']:
        expected[ids == seg['id']] = label_of[seg['category_id']]
    return expected


@pytest.fixture(scope='module')
def semantic_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_seg'))
    generate_synthetic(root, num_train=3, num_val=2, size=64, aux='depth', seed=0,
                       progress=False)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        _load_tool().main(['--data-root', root, '--splits', 'train', 'val'])
    assert json.loads(stdout.getvalue()) == {'classes': CLASSES}
    return root


def test_panoptic_to_semantic_tool_pixel_by_pixel(semantic_root, tmp_path):
    checked = 0
    for split in ('train', 'val'):
        with open(osp.join(semantic_root, 'annotations', f'panoptic_{split}.json')) as f:
            annotations = json.load(f)['annotations']
        for ann in annotations:
            written = cv2.imread(osp.join(semantic_root, 'annotations', f'semantic_{split}',
                                          ann['file_name']), cv2.IMREAD_UNCHANGED)
            assert written.dtype == np.uint8
            np.testing.assert_array_equal(written, _expected_semantic(semantic_root, split, ann))
            checked += 1
    assert checked == 5
    # splits whose category lists differ are refused, naming the split
    bad = str(tmp_path / 'bad')
    shutil.copytree(semantic_root, bad)
    path = osp.join(bad, 'annotations', 'panoptic_val.json')
    with open(path) as f:
        coco = json.load(f)
    coco['categories'] = coco['categories'][::-1]
    with open(path, 'w') as f:
        json.dump(coco, f)
    with pytest.raises(SystemExit, match="split 'val' has categories"):
        _load_tool().main(['--data-root', bad, '--splits', 'train', 'val'])


def _options(root):
    root = root + '/'
    opts = [f'{dl}.dataset.data_root={root}' for dl in ('train_dataloader', 'val_dataloader',
                                                          'test_dataloader')]
    opts += [f'{dl}.{key}' for dl in ('train_dataloader', 'val_dataloader', 'test_dataloader')
             for key in ('num_workers=0', 'persistent_workers=False')]
    return opts + ['train_dataloader.batch_size=2', f'train_cfg.max_iters={ITERS}',
                   f'train_cfg.val_interval={ITERS}', f'default_hooks.checkpoint.interval={ITERS}',
                   'default_hooks.logger.interval=1', 'randomness.seed=0']


def _miou(output):
    [value] = re.findall(r'mIoU: (\d+\.\d+)', output.split('Iter(val)' if 'Iter(val)' in output
                                                          else 'Iter(test)')[-1])
    return float(value)


def test_upernet_through_train_and_test_tools(semantic_root, tmp_path):
    from test_train_test import _run  # the tools' subprocess runner
    work = str(tmp_path / 'work')
    train_out = _run(['tools/train.py', UPERNET, '--work-dir', work, '--cfg-options'] +
                     _options(semantic_root))
    assert re.search(rf'Iter\(train\) \[{ITERS}/{ITERS}\]', train_out)
    ckpt = osp.join(work, f'iter_{ITERS}.pth')
    test_out = _run(['tools/test.py', UPERNET, ckpt, '--work-dir', str(tmp_path / 'test'),
                     '--cfg-options'] + _options(semantic_root))
    printed = _miou(test_out)
    assert _miou(train_out) == printed  # the validation after training, same weights

    # the checkpoint's predictions here, scored with a confusion matrix over the val PNGs
    cfg = Config.fromfile(osp.join(ROOT, UPERNET))
    cfg.test_dataloader.dataset.data_root = semantic_root + '/'
    with DefaultScope.overwrite_default_scope('mmseg'):
        from mmseg.registry import DATASETS, MODELS
        model = MODELS.build(cfg.model)
        load_checkpoint(model, ckpt, map_location='cpu')
        model.eval()
        dataset = DATASETS.build(cfg.test_dataloader.dataset)
        confusion = np.zeros((6, 6), np.int64)
        with open(osp.join(semantic_root, 'annotations', 'panoptic_val.json')) as f:
            annotations = {osp.splitext(a['file_name'])[0]: a for a in json.load(f)['annotations']}
        for i in range(len(dataset)):
            with torch.no_grad():
                [pred] = model.test_step(pseudo_collate([dataset[i]]))
            stem = osp.splitext(osp.basename(pred.img_path))[0]
            gt = _expected_semantic(semantic_root, 'val', annotations[stem]).astype(np.int64)
            labels = pred.pred_sem_seg.data[0].numpy()
            keep = gt != 255
            np.add.at(confusion, (gt[keep], labels[keep]), 1)
    # the synthetic scenes label every pixel (a stuff segment or a thing instance, no void):
    # 2 val images of 64 x 64 pixels
    assert len(dataset) == 2 and confusion.sum() == 2 * 64 * 64
    tp = np.diag(confusion).astype(float)
    union = confusion.sum(0) + confusion.sum(1) - tp
    with np.errstate(invalid='ignore'):
        iou = tp / union  # nan for a class neither in the ground truth nor predicted
    assert printed == pytest.approx(round(100 * np.nanmean(iou), 2), abs=0.006)
