"""The three multi-task metrics against panopticapi, pycocotools and a numpy confusion matrix.

Two hand-made 32x32 scenes with 2 thing classes (car, building) and 2 stuff classes (road,
grass), written to disk as COCO panoptic JSON + PNGs and COCO instances JSON.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData, PixelData
from panopticapi.evaluation import PQStat, pq_compute
from panopticapi.utils import id2rgb
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pmtseg_mm.evaluation.metrics.multitask_instance_metric import MultiTaskCocoMetric
from pmtseg_mm.evaluation.metrics.multitask_panoptic_metric import MultiTaskCocoPanopticMetric
from pmtseg_mm.evaluation.metrics.multitask_semseg_metric import (MultiTaskSemSegMetric,
                                                                  panoptic_to_semantic)

H = W = 32
CLASSES = ('car', 'building', 'road', 'grass')
THINGS = ('car', 'building')
CAT_IDS = (1, 2, 3, 4)  # things first, with the lowest ids
META = dict(classes=CLASSES, thing_classes=THINGS, stuff_classes=('road', 'grass'))
CAR, BUILDING, ROAD, GRASS = range(4)
VOID = len(CLASSES)  # mmdet's void label in panoptic predictions
EVALUATOR_CFG = osp.join(osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets',
                         'multitask_evaluator.py')
NINE_KEYS = ('panoptic/PQ', 'panoptic/SQ', 'panoptic/RQ', 'instance/segm_mAP',
             'instance/segm_mAP_50', 'instance/segm_mAP_75', 'semantic/mIoU', 'semantic/mAcc',
             'semantic/OA')

Box = Tuple[int, int, int, int]  # rows r0:r1, cols c0:c1
# label None = void; later segments are painted over earlier ones
GT_SCENES: List[List[Tuple[Optional[int], Box]]] = [
    [(ROAD, (0, 16, 0, 32)), (GRASS, (16, 32, 0, 32)), (CAR, (2, 8, 2, 10)),
     (CAR, (20, 26, 20, 28)), (BUILDING, (10, 22, 12, 20)), (None, (30, 32, 0, 4))],
    [(ROAD, (0, 32, 0, 32)), (GRASS, (0, 10, 0, 32)), (BUILDING, (12, 20, 2, 14)),
     (BUILDING, (22, 30, 18, 30)), (CAR, (24, 28, 2, 8))],
]
# imperfect panoptic predictions (mmdet encoding): a shifted car (TP), a missed car (FN), a
# building predicted as car (FN + FP), a half-covered building and grass (IoU 0.5: FN + FP),
# a small false car, void pixels
PRED_SCENES: List[List[Tuple[int, Box]]] = [
    [(ROAD, (0, 16, 0, 32)), (GRASS, (16, 32, 0, 32)), (CAR, (2, 8, 3, 11)),
     (CAR, (10, 22, 12, 20)), (VOID, (0, 2, 28, 32))],
    [(ROAD, (0, 32, 0, 32)), (GRASS, (0, 10, 0, 16)), (BUILDING, (12, 20, 2, 14)),
     (BUILDING, (22, 26, 18, 30)), (CAR, (24, 28, 2, 8)), (CAR, (14, 16, 20, 24))],
]
# imperfect instance predictions: (label, box, score)
PRED_INSTANCES: List[List[Tuple[int, Box, float]]] = [
    [(CAR, (2, 8, 3, 11), 0.9), (CAR, (10, 22, 12, 20), 0.6), (BUILDING, (10, 18, 12, 20), 0.8)],
    [(BUILDING, (12, 20, 2, 14), 0.95), (BUILDING, (22, 26, 18, 30), 0.7),
     (CAR, (24, 28, 2, 8), 0.85), (CAR, (14, 16, 20, 24), 0.3)],
]


def box_mask(box: Box) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[box[0]:box[1], box[2]:box[3]] = True
    return mask


def paint(segments) -> np.ndarray:
    """Segment index map (-1 = void) of segments painted in order."""
    index = np.full((H, W), -1)
    for i, (label, box) in enumerate(segments):
        index[box_mask(box)] = -1 if label is None else i
    return index


def gt_segments(scene: int) -> List[Tuple[int, np.ndarray]]:
    """(label, mask) of the visible ground-truth segments of a scene."""
    index = paint(GT_SCENES[scene])
    return [(label, index == i) for i, (label, _) in enumerate(GT_SCENES[scene])
            if label is not None and (index == i).any()]


def gt_semantic(scene: int) -> np.ndarray:
    sem = np.full((H, W), 255)
    for label, mask in gt_segments(scene):
        sem[mask] = label
    return sem


def encode_panoptic(segments: List[Tuple[int, np.ndarray]]) -> np.ndarray:
    """mmdet panoptic map: things ``label + k * INSTANCE_OFFSET``, stuff ``label``, else void."""
    pan = np.full((H, W), VOID)
    for k, (label, mask) in enumerate(segments, start=1):
        pan[mask] = label + k * INSTANCE_OFFSET if label in (CAR, BUILDING) else label
    return pan


def pred_panoptic(scene: int) -> np.ndarray:
    index = paint(PRED_SCENES[scene])
    return encode_panoptic([(label, index == i) for i, (label, _) in enumerate(PRED_SCENES[scene])
                            if label != VOID])


def rle(mask: np.ndarray) -> dict:
    encoded = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded['counts'] = encoded['counts'].decode()
    return encoded


def bbox_xywh(mask: np.ndarray) -> List[int]:
    rows, cols = np.nonzero(mask)
    return [int(cols.min()), int(rows.min()), int(cols.max() - cols.min() + 1),
            int(rows.max() - rows.min() + 1)]


def write_dataset(root: str, ext: str) -> Dict[str, str]:
    """COCO panoptic JSON + PNGs and COCO instances JSON (things only) of the GT scenes."""
    images = [dict(id=i + 1, file_name=f'tile_{i}{ext}', height=H, width=W)
              for i in range(len(GT_SCENES))]
    pan_anns, inst_anns = [], []
    for i in range(len(GT_SCENES)):
        ids = np.zeros((H, W), np.int64)
        segments_info = []
        for k, (label, mask) in enumerate(gt_segments(i), start=1):
            ids[mask] = 10 * k + label  # any distinct non-zero id
            segments_info.append(dict(id=10 * k + label, category_id=CAT_IDS[label],
                                      area=int(mask.sum()), bbox=bbox_xywh(mask), iscrowd=0))
            if label in (CAR, BUILDING):
                inst_anns.append(dict(id=len(inst_anns) + 1, image_id=i + 1,
                                      category_id=CAT_IDS[label], segmentation=rle(mask),
                                      area=int(mask.sum()), bbox=bbox_xywh(mask), iscrowd=0))
        Image.fromarray(id2rgb(ids)).save(osp.join(root, 'panoptic_val', f'tile_{i}.png'))
        pan_anns.append(dict(image_id=i + 1, file_name=f'tile_{i}.png',
                             segments_info=segments_info))
    categories = [dict(id=cat_id, name=name, isthing=int(name in THINGS), supercategory='rs')
                  for cat_id, name in zip(CAT_IDS, CLASSES)]
    paths = dict(panoptic=osp.join(root, 'panoptic_val.json'),
                 instances=osp.join(root, 'instances_val.json'),
                 seg_prefix=osp.join(root, 'panoptic_val'))
    with open(paths['panoptic'], 'w') as f:
        json.dump(dict(images=images, annotations=pan_anns, categories=categories), f)
    with open(paths['instances'], 'w') as f:
        json.dump(dict(images=images, annotations=inst_anns, categories=categories[:2]), f)
    return paths


@pytest.fixture(params=['.png', '.tif'])
def dataset(request, tmp_path) -> Tuple[Dict[str, str], str]:
    (tmp_path / 'panoptic_val').mkdir()
    return write_dataset(str(tmp_path), request.param), request.param


def instance_data(instances: List[Tuple[int, np.ndarray, float]]) -> InstanceData:
    masks = torch.from_numpy(np.stack([m for _, m, _ in instances]) if instances else
                             np.zeros((0, H, W), bool))
    bboxes = [[x, y, x + w, y + h] for x, y, w, h in (bbox_xywh(m) for _, m, _ in instances)]
    return InstanceData(
        masks=masks,
        labels=torch.tensor([label for label, _, _ in instances], dtype=torch.long),
        scores=torch.tensor([score for _, _, score in instances], dtype=torch.float),
        bboxes=torch.tensor(bboxes, dtype=torch.float).reshape(-1, 4))


def make_samples(ext: str,
                 panoptic: Optional[List[np.ndarray]] = None,
                 instances: Optional[List[list]] = None,
                 semantic: Optional[List[np.ndarray]] = None) -> List[DetDataSample]:
    """Data samples as PMTSeg.predict returns them (GT fields as the test pipeline packs them)."""
    samples = []
    for i in range(len(GT_SCENES)):
        sample = DetDataSample(metainfo=dict(
            img_id=i + 1, img_path=f'data/rs/optical/val/tile_{i}{ext}', ori_shape=(H, W),
            seg_map_path=f'data/rs/annotations/panoptic_val/tile_{i}.png',
            segments_info=[dict(id=10 * k + label, category=label, is_thing=label < 2)
                           for k, (label, _) in enumerate(gt_segments(i), start=1)]))
        sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(gt_semantic(i))[None])
        if panoptic is not None:
            sample.pred_panoptic_seg = PixelData(sem_seg=torch.from_numpy(panoptic[i])[None])
        if instances is not None:
            sample.pred_instances = instance_data(instances[i])
        if semantic is not None:
            sample.pred_sem_seg = PixelData(sem_seg=torch.from_numpy(semantic[i])[None])
        samples.append(sample)
    return samples


def run_metric(metric, samples: List[DetDataSample]) -> dict:
    metric.dataset_meta = META
    metric.process({}, [s.to_dict() for s in samples])
    return metric.evaluate(len(samples))


def imperfect_instances() -> List[list]:
    return [[(label, box_mask(box), score) for label, box, score in scene]
            for scene in PRED_INSTANCES]


def imperfect_semantic() -> List[np.ndarray]:
    rng = np.random.default_rng(0)
    preds = []
    for i in range(len(GT_SCENES)):
        pred = np.where(gt_semantic(i) == 255, GRASS, gt_semantic(i))
        flip = rng.random((H, W)) < 0.25
        preds.append(np.where(flip, rng.integers(0, len(CLASSES), (H, W)), pred))
    return preds


def reference_pq(paths: Dict[str, str], tmp_path, preds: List[np.ndarray]) -> dict:
    """panopticapi's pq_compute on prediction PNGs + JSON written from the mmdet maps."""
    pred_dir = tmp_path / 'reference_pred'
    pred_dir.mkdir()
    annotations = []
    for i, pan in enumerate(preds):
        ids = np.where(pan % INSTANCE_OFFSET == VOID, 0, pan)
        segments = [dict(id=int(v), category_id=CAT_IDS[int(v) % INSTANCE_OFFSET])
                    for v in np.unique(ids) if v != 0]
        Image.fromarray(id2rgb(ids)).save(pred_dir / f'tile_{i}.png')
        annotations.append(dict(image_id=i + 1, file_name=f'tile_{i}.png',
                                segments_info=segments))
    pred_json = tmp_path / 'reference_pred.json'
    pred_json.write_text(json.dumps(dict(annotations=annotations)))
    return pq_compute(paths['panoptic'], str(pred_json), paths['seg_prefix'], str(pred_dir))


def reference_ap(paths: Dict[str, str], instances: List[list],
                 cat_id: Optional[int] = None) -> np.ndarray:
    """pycocotools COCOeval(iouType='segm') stats (of one category if ``cat_id`` is given)."""
    gt = COCO(paths['instances'])
    dets = [dict(image_id=i + 1, category_id=CAT_IDS[label], segmentation=rle(mask),
                 score=score)
            for i, scene in enumerate(instances) for label, mask, score in scene]
    coco_eval = COCOeval(gt, gt.loadRes(dets), iouType='segm')
    if cat_id is not None:
        coco_eval.params.catIds = [cat_id]
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats


def reference_semseg(preds: List[np.ndarray]) -> Dict[str, float]:
    """mIoU/mAcc/OA (percent) from a confusion matrix; predictions >= 4 (void) are misses."""
    cm = np.zeros((len(CLASSES), len(CLASSES) + 1))
    for i, pred in enumerate(preds):
        gt = gt_semantic(i)
        valid = gt != 255
        np.add.at(cm, (gt[valid], np.minimum(pred[valid], len(CLASSES))), 1)
    tp = np.diag(cm[:, :len(CLASSES)])
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = tp / (cm.sum(1) + cm[:, :len(CLASSES)].sum(0) - tp)
        acc = tp / cm.sum(1)
    return dict(mIoU=100 * np.nanmean(iou), mAcc=100 * np.nanmean(acc),
                OA=100 * tp.sum() / cm.sum(), IoU=100 * iou)


@pytest.mark.parametrize('mode', ['ann_file', 'segments_info', 'outfile_prefix'])
def test_panoptic_matches_panopticapi(dataset, tmp_path, mode):
    paths, ext = dataset
    preds = [pred_panoptic(i) for i in range(len(GT_SCENES))]
    kwargs = dict(seg_prefix=paths['seg_prefix'])
    if mode != 'segments_info':
        kwargs['ann_file'] = paths['panoptic']
    if mode == 'outfile_prefix':
        kwargs.update(outfile_prefix=str(tmp_path / 'out'), nproc=1)
    samples = make_samples(ext, panoptic=preds)
    results = run_metric(MultiTaskCocoPanopticMetric(**kwargs), samples)
    ref = reference_pq(paths, tmp_path, preds)
    for key, group in (('', 'All'), ('_th', 'Things'), ('_st', 'Stuff')):
        for name in ('pq', 'sq', 'rq'):
            assert results[f'panoptic/{name.upper()}{key}'] == pytest.approx(
                100 * ref[group][name], abs=1e-6)
    # by hand: car TP 2 (IoU 42/54, 1) FP 2 FN 1; building TP 1 FP 1 FN 2;
    # road TP 2 (402/422, 480/696); grass TP 1 (408/456) FP 1 FN 1 (IoU exactly 0.5 is no match)
    pq_car, pq_building = (42 / 54 + 1) / 3.5, 1 / 2.5
    pq_road, pq_grass = (402 / 422 + 480 / 696) / 2, 408 / 456 / 2
    for name, pq in (('car', pq_car), ('building', pq_building), ('road', pq_road),
                     ('grass', pq_grass)):  # mmdet's outfile path returns no per-class values
        assert results.get(f'panoptic/{name}_PQ', 100 * pq) == pytest.approx(100 * pq, abs=1e-3)
    assert ('panoptic/car_PQ' in results) == (mode != 'outfile_prefix')
    assert results['panoptic/PQ'] == pytest.approx(
        25 * (pq_car + pq_building + pq_road + pq_grass))
    assert results['panoptic/PQ_th'] == pytest.approx(50 * (pq_car + pq_building))
    assert results['panoptic/RQ_st'] == pytest.approx(50 * (1 + 0.5))
    # the prediction tensor is not modified (mmdet writes VOID into it in place)
    assert torch.equal(samples[0].pred_panoptic_seg.sem_seg[0], torch.from_numpy(preds[0]))


def test_instance_matches_cocoeval(dataset):
    paths, ext = dataset
    instances = imperfect_instances()
    results = run_metric(MultiTaskCocoMetric(ann_file=paths['instances']),
                         make_samples(ext, instances=instances))
    stats = reference_ap(paths, instances)
    assert 0 < stats[2] < stats[1] < 1
    for key, stat in zip(('segm_mAP', 'segm_mAP_50', 'segm_mAP_75'), stats):
        # COCOeval's stats unrounded (mmdet keeps 3 decimals), in percent with 2 decimals
        assert results[f'instance/{key}'] == pytest.approx(round(100 * stat, 2), abs=1e-9)
    for label, cat_id in enumerate(CAT_IDS[:2]):  # per-class AP = COCOeval on that category
        name = CLASSES[label]
        assert results[f'instance/segm_{name}_AP'] == pytest.approx(
            round(100 * reference_ap(paths, instances, cat_id)[0], 2), abs=1e-9)
    assert 'instance/car_precision' not in results


def test_instance_labels_map_to_thing_categories_by_name(tmp_path):
    (tmp_path / 'panoptic_val').mkdir()
    paths = write_dataset(str(tmp_path), '.png')
    # the instance JSON lists building before car: labels must still map by name
    data = json.loads(open(paths['instances']).read())
    data['categories'] = data['categories'][::-1]
    with open(paths['instances'], 'w') as f:
        json.dump(data, f)
    instances = imperfect_instances()
    results = run_metric(MultiTaskCocoMetric(ann_file=paths['instances']),
                         make_samples('.png', instances=instances))
    assert results['instance/segm_mAP'] == pytest.approx(
        round(100 * reference_ap(paths, instances)[0], 2), abs=1e-9)


def test_semantic_matches_confusion_matrix():
    preds = imperfect_semantic()
    results = run_metric(MultiTaskSemSegMetric(), make_samples('.png', semantic=preds))
    ref = reference_semseg(preds)
    assert set(results) == {'semantic/mIoU', 'semantic/mAcc', 'semantic/OA'} | {
        f'semantic/{name}_IoU' for name in CLASSES}
    assert 50 < ref['mIoU'] < 90
    for key in ('mIoU', 'mAcc', 'OA'):
        assert results[f'semantic/{key}'] == pytest.approx(ref[key], abs=0.006)
    for name, iou in zip(CLASSES, ref['IoU']):
        assert results[f'semantic/{name}_IoU'] == pytest.approx(iou, abs=0.006)


def test_semantic_from_panoptic_counts_void_as_miss():
    pans = [pred_panoptic(i) for i in range(len(GT_SCENES))]
    derived = [pan % INSTANCE_OFFSET for pan in pans]  # void stays 4 = a miss
    assert (derived[0] == VOID).sum() == 8
    results = run_metric(MultiTaskSemSegMetric(), make_samples('.png', panoptic=pans))
    ref = reference_semseg(derived)
    for key in ('mIoU', 'mAcc', 'OA'):
        assert results[f'semantic/{key}'] == pytest.approx(ref[key], abs=0.006)
    # by hand, OA: GT pixels 1016 + 1024; wrong: img 0 car B 48 + building 96 + 8 void on road
    # + car shift 6 + 6; img 1 building B 48 + grass 160 + false car 8
    assert results['semantic/OA'] == pytest.approx(
        round(100 * (1 - (48 + 96 + 8 + 12 + 48 + 160 + 8) / 2040), 2))


def test_panoptic_to_semantic_ignore_index():
    pan = torch.tensor([[[2, 1000, 255, VOID, 3 * INSTANCE_OFFSET + 1]]])
    assert panoptic_to_semantic(dict(sem_seg=pan, ignore_index=255), 4).tolist() == [
        [[2, 0, 4, 4, 1]]]


def test_panoptic_empty_group_is_nan():
    categories = {1: dict(id=1, name='car', isthing=1), 2: dict(id=2, name='road', isthing=0)}
    pq_stat = PQStat()
    pq_stat[1].tp, pq_stat[1].fp, pq_stat[1].iou = 1, 1, 0.8
    average, per_class = MultiTaskCocoPanopticMetric._average(pq_stat, categories, None)
    assert average == dict(pq=pytest.approx(0.8 / 1.5), sq=0.8, rq=pytest.approx(1 / 1.5), n=1)
    assert np.isnan(per_class[2]['pq']) and per_class[1]['sq'] == 0.8
    stuff, stuff_per_class = MultiTaskCocoPanopticMetric._average(pq_stat, categories, False)
    assert stuff['n'] == 0 and np.isnan(stuff['pq']) and list(stuff_per_class) == [2]


def all_nine(tmp_path, paths: Dict[str, str], samples: List[DetDataSample]) -> dict:
    """Evaluate with the config snippet, its paths filled the documented way."""
    child = tmp_path / 'evaluator_child.py'
    child.write_text(
        f'_base_ = [{osp.abspath(EVALUATOR_CFG)!r}]\n'
        'val_evaluator = [\n'
        f'    dict(_base_.val_evaluator[0], ann_file={paths["panoptic"]!r},\n'
        f'         seg_prefix={paths["seg_prefix"]!r}),\n'
        f'    dict(_base_.val_evaluator[1], ann_file={paths["instances"]!r}),\n'
        '    _base_.val_evaluator[2],\n'
        ']\n')
    evaluator = Evaluator(Config.fromfile(str(child)).val_evaluator)
    assert [type(m).__name__ for m in evaluator.metrics] == [
        'MultiTaskCocoPanopticMetric', 'MultiTaskCocoMetric', 'MultiTaskSemSegMetric']
    evaluator.dataset_meta = META
    evaluator.process(samples)
    return evaluator.evaluate(len(samples))


def test_evaluator_reports_nine_keys(dataset, tmp_path):
    paths, ext = dataset
    pans = [pred_panoptic(i) for i in range(len(GT_SCENES))]
    instances = imperfect_instances()
    # no pred_sem_seg (a stock Mask2Former): semantic comes from the panoptic map, which the
    # panoptic metric (first in the list) must leave intact
    results = all_nine(tmp_path, paths, make_samples(ext, pans, instances))
    assert set(NINE_KEYS) <= set(results)
    ref_pq = reference_pq(paths, tmp_path, pans)
    ref_ap = reference_ap(paths, instances)
    ref_sem = reference_semseg([pan % INSTANCE_OFFSET for pan in pans])
    assert results['panoptic/PQ'] == pytest.approx(100 * ref_pq['All']['pq'], abs=1e-6)
    assert results['instance/segm_mAP_50'] == pytest.approx(round(100 * ref_ap[1], 2), abs=1e-9)
    assert results['semantic/mIoU'] == pytest.approx(ref_sem['mIoU'], abs=0.006)


def test_perfect_and_empty_predictions(tmp_path):
    (tmp_path / 'panoptic_val').mkdir()
    paths = write_dataset(str(tmp_path), '.png')
    n = len(GT_SCENES)
    perfect = make_samples(
        '.png',
        panoptic=[encode_panoptic(gt_segments(i)) for i in range(n)],
        instances=[[(label, mask, 1.0) for label, mask in gt_segments(i) if label < 2]
                   for i in range(n)],
        semantic=[np.where(gt_semantic(i) == 255, 0, gt_semantic(i)) for i in range(n)])
    results = all_nine(tmp_path, paths, perfect)
    for key in NINE_KEYS:
        assert results[key] == pytest.approx(100.0), key

    (tmp_path / 'second').mkdir()
    empty = make_samples('.png', panoptic=[np.full((H, W), VOID)] * n, instances=[[]] * n)
    results = all_nine(tmp_path / 'second', paths, empty)
    for key in NINE_KEYS:
        assert results[key] == 0.0, key


def test_missing_predictions_are_skipped_then_an_error(dataset, tmp_path):
    paths, ext = dataset
    pans = [pred_panoptic(i) for i in range(len(GT_SCENES))]
    samples = make_samples(ext, panoptic=pans)
    del samples[1].pred_panoptic_seg
    only_first = run_metric(MultiTaskCocoPanopticMetric(
        ann_file=paths['panoptic'], seg_prefix=paths['seg_prefix'], classwise=False), samples)
    # scene 0 alone: car TP 1 FP 1 FN 1, building FN 1, road TP, grass TP
    assert only_first['panoptic/RQ_th'] == pytest.approx(50 * (1 / 2 + 0))
    metrics = (MultiTaskCocoPanopticMetric(ann_file=paths['panoptic'],
                                           seg_prefix=paths['seg_prefix']),
               MultiTaskCocoMetric(ann_file=paths['instances']),
               MultiTaskSemSegMetric())
    for metric, missing in zip(metrics, ('pred_panoptic_seg', 'pred_instances',
                                         'pred_sem_seg` or `pred_panoptic_seg')):
        with pytest.raises(ValueError, match=f'no data sample has `{missing}`'):
            run_metric(metric, make_samples(ext))


def test_bad_inputs_raise(tmp_path):
    (tmp_path / 'panoptic_val').mkdir()
    paths = write_dataset(str(tmp_path), '.png')
    with pytest.raises(ValueError, match='`seg_prefix`'):
        MultiTaskCocoPanopticMetric(ann_file=paths['panoptic'])
    with pytest.raises(ValueError, match='`metric`'):
        MultiTaskCocoMetric(ann_file=paths['instances'], metric='proposal')
    # a stuff label in pred_instances
    with pytest.raises(ValueError, match='must be thing classes'):
        run_metric(MultiTaskCocoMetric(ann_file=paths['instances']),
                   make_samples('.png', instances=[[(ROAD, box_mask((0, 4, 0, 4)), 0.5)]] * 2))
    # a dataset class that the annotation files lack
    renamed = dict(META, classes=('car', 'house', 'road', 'grass'),
                   thing_classes=('car', 'house'))
    panoptic = MultiTaskCocoPanopticMetric(ann_file=paths['panoptic'],
                                           seg_prefix=paths['seg_prefix'])
    panoptic.dataset_meta = renamed
    with pytest.raises(ValueError, match=r"classes \['house'\]"):
        panoptic.process({}, [s.to_dict() for s in make_samples(
            '.png', panoptic=[pred_panoptic(0)] * 2)])
    instance = MultiTaskCocoMetric(ann_file=paths['instances'])
    instance.dataset_meta = renamed
    instance.process({}, [s.to_dict() for s in make_samples('.png', instances=[[]] * 2)])
    with pytest.raises(ValueError, match=r"thing classes \['house'\]"):
        instance.evaluate(2)
    # prediction and ground truth of different sizes
    small = make_samples('.png', semantic=[np.zeros((16, 16), np.int64)] * 2)
    with pytest.raises(ValueError, match='differ in size'):
        run_metric(MultiTaskSemSegMetric(), small)
