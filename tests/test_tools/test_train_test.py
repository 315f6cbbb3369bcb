"""tools/train.py and tools/test.py end to end on generated data with the main model (a tiny
PMTSeg): train (and validate), the nine metrics equal to an in-process evaluation of the same
checkpoint, the dumped predictions re-scored by panopticapi, pycocotools and a confusion matrix,
``--out``, ``--amp``, resume, pictures and a task subset."""
import json
import os
import os.path as osp
import pickle
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.runner import load_checkpoint
from panopticapi.utils import rgb2id

from pmtseg_mm.datasets.synthetic import generate_synthetic

pytestmark = pytest.mark.slow

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PMTSEG_TINY = 'configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
METRIC_KEYS = ('panoptic/PQ', 'panoptic/SQ', 'panoptic/RQ', 'instance/segm_mAP',
               'instance/segm_mAP_50', 'instance/segm_mAP_75', 'semantic/mIoU', 'semantic/mAcc',
               'semantic/OA')
ITERS = 30
#: the tiny PMTSeg with 16-channel ResNet-18s (fits in a few CPU seconds) and thresholds low
#: enough that the briefly trained model predicts instances; data paths and a CPU-sized loop
CONFIG = """_base_ = {base!r}
data_root = {root!r}
r18 = dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), base_channels=16,
           stem_channels=16, init_cfg=None)
model = dict(backbone=dict(backbones=[r18, r18]), neck=dict(in_channels=[[16, 32, 64, 128]] * 2),
             test_cfg=dict(object_mask_thr=0.05, max_per_image=20))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=data_root))
val_dataloader = dict(num_workers=0, persistent_workers=False, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [
    dict(_base_.val_evaluator[0], ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/'),
    dict(_base_.val_evaluator[1], ann_file=data_root + 'annotations/instances_val.json'),
    _base_.val_evaluator[2],
]
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(lr=0.001))
train_cfg = dict(max_iters={iters}, val_interval={iters})
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={iters}))
randomness = dict(seed=0)
"""


def _data_options(data_root: str) -> list:
    """--cfg-options pointing a stock tiny config at a generated dataset (also used by
    tests/test_apis/test_behaviour_fixtures.py)."""
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


def _printed(output: str) -> dict:
    """The nine metrics of the last evaluation in a tool's log, as floats."""
    found = {}
    for key, value in re.findall(r'((?:panoptic|instance|semantic)/\w+): (-?\d+\.\d+)', output):
        found[key] = float(value)
    assert set(METRIC_KEYS) <= set(found), output[-3000:]
    return {key: found[key] for key in METRIC_KEYS}


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    data_root = str(tmp_path_factory.mktemp('synthetic'))
    generate_synthetic(data_root, num_train=3, num_val=2, size=64, aux='depth', seed=0,
                       progress=False)
    work_dir = str(tmp_path_factory.mktemp('work'))
    # not in the work dir: the Runner dumps its config there under the same name, with the dict
    # keys sorted (which would put depth before optical in `modalities`)
    config = osp.join(str(tmp_path_factory.mktemp('config')), 'tiny_pmtseg.py')
    with open(config, 'w') as f:
        f.write(CONFIG.format(base=osp.join(ROOT, PMTSEG_TINY), root=data_root + '/',
                              iters=ITERS))
    out = _run(['tools/train.py', config, '--work-dir', work_dir])
    return dict(data_root=data_root, work_dir=work_dir, config=config, out=out,
                ckpt=osp.join(work_dir, f'iter_{ITERS}.pth'))


@pytest.fixture(scope='module')
def in_process(trained):
    """The checkpoint evaluated here, without the Runner: model, dataset, evaluators built from
    the config, one image per step."""
    from mmdet.registry import DATASETS, MODELS
    cfg = Config.fromfile(trained['config'])
    model = MODELS.build(cfg.model)
    load_checkpoint(model, trained['ckpt'], map_location='cpu')
    model.eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    predictions = []
    with torch.no_grad():
        for i in range(len(dataset)):
            batch = pseudo_collate([dataset[i]])
            outputs = model.test_step(batch)
            predictions += outputs
            evaluator.process(data_samples=outputs, data_batch=batch)
        metrics = evaluator.evaluate(len(dataset))
    return dict(metrics={key: metrics[key] for key in METRIC_KEYS}, predictions=predictions,
                classes=dataset.metainfo['classes'])


def test_train_and_validate_equal_in_process_evaluation(trained, in_process):
    out = trained['out']
    assert osp.exists(trained['ckpt'])
    assert re.search(rf'Iter\(train\) \[{ITERS}/{ITERS}\]', out)
    printed = _printed(out)
    # the log prints 4 decimals of the metrics' own rounding
    assert printed == pytest.approx(in_process['metrics'], abs=5e-5)
    # a model that predicts something: the equalities below compare non-trivial numbers
    assert printed['semantic/mIoU'] > 5 and printed['instance/segm_mAP_50'] > 0


def _semantic_scores(pred_dir, data_root, num_classes):
    """mIoU / mAcc / OA (percent) of the dumped class maps against the panoptic ground truth
    converted here (segment -> its category's index; unlabelled pixels ignored)."""
    with open(osp.join(data_root, 'annotations', 'panoptic_val.json')) as f:
        coco = json.load(f)
    label_of = {c['id']: i for i, c in enumerate(coco['categories'])}
    confusion = np.zeros((num_classes, num_classes + 1), np.int64)  # + predicted void
    for ann in coco['annotations']:
        ids = rgb2id(cv2.imread(osp.join(data_root, 'annotations', 'panoptic_val',
                                         ann['file_name']))[..., ::-1])
        gt = np.full(ids.shape, 255, np.int64)
        for seg in ann['segments_info']:
            gt[ids == seg['id']] = label_of[seg['category_id']]
        stem = osp.splitext(ann['file_name'])[0]
        pred = cv2.imread(osp.join(pred_dir, stem + '.png'), cv2.IMREAD_UNCHANGED).astype(np.int64)
        keep = gt != 255
        np.add.at(confusion, (gt[keep], np.minimum(pred[keep], num_classes)), 1)
    tp = np.diag(confusion[:, :num_classes]).astype(float)
    gt_count, pred_count = confusion.sum(1), confusion[:, :num_classes].sum(0)
    union = gt_count + pred_count - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        iou, acc = tp / union, tp / gt_count
    return {'semantic/mIoU': round(100 * np.nanmean(iou), 2),
            'semantic/mAcc': round(100 * np.nanmean(acc), 2),
            'semantic/OA': round(100 * tp.sum() / gt_count.sum(), 2)}


def test_test_tool_metrics_dumps_out_and_pictures(trained, in_process, tmp_path):
    from panopticapi.evaluation import pq_compute
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    data_root, ann = trained['data_root'], osp.join(trained['data_root'], 'annotations')
    dump, show_dir, pkl = str(tmp_path / 'dump'), str(tmp_path / 'pictures'), str(tmp_path /
                                                                                    'preds.pkl')
    out = _run(['tools/test.py', trained['config'], trained['ckpt'], '--work-dir',
                str(tmp_path / 'test'), '--dump-dir', dump, '--out', pkl, '--show-dir', show_dir,
                '--show-num', '1'])
    printed = _printed(out)
    assert printed == pytest.approx(in_process['metrics'], abs=5e-5)

    # panoptic dump: panopticapi's PQ/SQ/RQ (fractions) on the written JSON + PNGs
    pq = pq_compute(osp.join(ann, 'panoptic_val.json'), osp.join(dump, 'panoptic.panoptic.json'),
                    osp.join(ann, 'panoptic_val'), osp.join(dump, 'panoptic.panoptic'))['All']
    assert [100 * pq[k] for k in ('pq', 'sq', 'rq')] == pytest.approx(
        [printed['panoptic/PQ'], printed['panoptic/SQ'], printed['panoptic/RQ']], abs=1e-3)
    # instance dump: pycocotools' segm AP on the written results (≤ 20 detections per image,
    # so its default maxDets = 100 counts them all)
    gt = COCO(osp.join(ann, 'instances_val.json'))
    coco_eval = COCOeval(gt, gt.loadRes(osp.join(dump, 'instance.segm.json')), 'segm')
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    assert [100 * s for s in coco_eval.stats[:3]] == pytest.approx(
        [printed['instance/segm_mAP'], printed['instance/segm_mAP_50'],
         printed['instance/segm_mAP_75']], abs=0.006)
    # semantic dump: a confusion matrix against the ground truth converted here
    semantic = _semantic_scores(osp.join(dump, 'semantic'), data_root,
                                len(in_process['classes']))
    assert semantic == pytest.approx({k: printed[k] for k in semantic}, abs=0.006)

    # --out: the raw predictions of both images, equal to the in-process ones
    with open(pkl, 'rb') as f:
        dumped = pickle.load(f)
    assert [osp.basename(d['img_path']) for d in dumped] == [
        osp.basename(p.img_path) for p in in_process['predictions']]
    for raw, pred in zip(dumped, in_process['predictions']):
        assert torch.equal(raw['pred_panoptic_seg']['sem_seg'], pred.pred_panoptic_seg.sem_seg)
        assert torch.equal(raw['pred_sem_seg']['sem_seg'], pred.pred_sem_seg.sem_seg)
        assert raw['pred_instances']['labels'].tolist() == pred.pred_instances.labels.tolist()
        stem = osp.splitext(osp.basename(raw['img_path']))[0]
        png = cv2.imread(osp.join(dump, 'semantic', stem + '.png'), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(png, raw['pred_sem_seg']['sem_seg'][0].numpy())
    pictures = os.listdir(show_dir)
    assert len(pictures) == 1 and pictures[0].endswith('.png')


def test_checkpoint_loads_with_weights_only_and_resumes_with_amp(trained, tmp_path):
    ckpt = trained['ckpt']
    # torch >= 2.6 defaults to weights_only=True; the allow-list (registered on import) is enough
    state = torch.load(ckpt, map_location='cpu')
    assert state['meta']['iter'] == ITERS
    # ... and it is needed: without it the safe unpickler rejects the mmengine checkpoint
    bare = subprocess.run(
        [sys.executable, '-c', f'import torch; torch.load({ckpt!r}, map_location="cpu")'],
        capture_output=True, text=True, timeout=120)
    assert bare.returncode != 0 and 'weights_only' in bare.stderr
    work_dir = str(tmp_path / 'resumed')
    out = _run(['tools/train.py', trained['config'], '--work-dir', work_dir, '--resume', ckpt,
                '--amp', '--cfg-options', f'train_cfg.max_iters={ITERS + 1}',
                'train_cfg.val_interval=1000', 'default_hooks.checkpoint.interval=1'])
    assert 'resumed' in out.lower() and re.search(rf'Iter\(train\) \[{ITERS + 1}/{ITERS + 1}\]',
                                                   out)
    assert not re.search(rf'Iter\(train\) \[ ?{ITERS}/', out)  # continued from the checkpoint
    # --amp on a CPU machine: bfloat16 autocast through CPUBF16OptimWrapper
    assert "type='CPUBF16OptimWrapper'" in out
    [loss] = re.findall(rf'Iter\(train\) \[{ITERS + 1}/{ITERS + 1}\].* loss: (-?\d+\.\d+)', out)
    assert np.isfinite(float(loss))
    after = torch.load(osp.join(work_dir, f'iter_{ITERS + 1}.pth'), map_location='cpu')
    assert after['meta']['iter'] == ITERS + 1
    changed = [k for k, v in state['state_dict'].items()
               if v.is_floating_point() and not torch.equal(v, after['state_dict'][k])]
    assert len(changed) > 0.5 * len(state['state_dict'])  # one bf16 step updated the weights


def test_test_tool_task_subset_and_standard_dumps(trained, tmp_path):
    dump = str(tmp_path / 'dump')
    out = _run(['tools/test.py', trained['config'], trained['ckpt'], '--work-dir',
                str(tmp_path / 'test_dump'), '--tasks', 'panoptic', 'semantic', '--dump-dir',
                dump])
    full = _printed(trained['out'])
    for key in ('panoptic/PQ', 'semantic/mIoU'):
        [value] = re.findall(re.escape(key) + r': (-?\d+\.\d+)', out)
        assert float(value) == full[key]  # the same figures without the instance evaluator
    assert 'instance/segm_mAP' not in out  # the instance evaluator was dropped
    assert sorted(os.listdir(osp.join(dump, 'semantic'))) == ['val_00000.png', 'val_00001.png']
    assert osp.exists(osp.join(dump, 'panoptic.panoptic.json'))
    assert len(os.listdir(osp.join(dump, 'panoptic.panoptic'))) == 2
