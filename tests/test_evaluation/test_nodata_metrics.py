"""PQ and AP leave out the pixels of a sample's ``nodata_mask``.

The two 32x32 scenes of test_metrics.py, with a nodata area over a ground-truth car and its
prediction in scene 0 and over a car and part of a building in scene 1. References: panopticapi
and pycocotools on files voided by hand (GT PNG zero there, segments and instances left without a
pixel removed, the others' areas recounted, predictions trimmed), and perfect predictions on the
valid pixels (100).
"""
import json
import logging
from typing import Dict, List

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.logging import MMLogger
from panopticapi.utils import id2rgb, rgb2id
from PIL import Image
from test_metrics import (CAR, GT_SCENES, H, VOID, W, box_mask, gt_segments,
                          imperfect_instances, make_samples, pred_panoptic, reference_ap,
                          reference_pq, rle, run_metric, write_dataset)

from pmtseg_mm.evaluation.metrics.multitask_instance_metric import MultiTaskCocoMetric
from pmtseg_mm.evaluation.metrics.multitask_panoptic_metric import MultiTaskCocoPanopticMetric

NODATA = [box_mask((0, 10, 0, 12)), box_mask((16, 32, 0, 10))]
PQ_KEYS = [f'panoptic/{m}{g}' for m in ('PQ', 'SQ', 'RQ') for g in ('', '_th', '_st')]


@pytest.fixture
def paths(tmp_path) -> Dict[str, str]:
    (tmp_path / 'panoptic_val').mkdir()
    return write_dataset(str(tmp_path), '.png')


def with_nodata(samples, masks=NODATA):
    for sample, mask in zip(samples, masks):
        sample.set_metainfo(dict(nodata_mask=mask))
    return samples


def voided_files(paths: Dict[str, str], root) -> Dict[str, str]:
    """The dataset's annotation files with the NODATA pixels void, written by hand."""
    root.mkdir()
    (root / 'panoptic_val').mkdir()
    panoptic = json.loads(open(paths['panoptic']).read())
    for ann, nodata in zip(panoptic['annotations'], NODATA):
        png = f"{paths['seg_prefix']}/{ann['file_name']}"
        ids = rgb2id(np.array(Image.open(png)))
        ids[nodata] = 0
        Image.fromarray(id2rgb(ids)).save(root / 'panoptic_val' / ann['file_name'])
        ann['segments_info'] = [dict(s, area=int((ids == s['id']).sum()))
                                for s in ann['segments_info'] if (ids == s['id']).any()]
    instances = json.loads(open(paths['instances']).read())
    kept = []
    for ann in instances['annotations']:
        mask = mask_util.decode(ann['segmentation']).astype(bool) & ~NODATA[ann['image_id'] - 1]
        if mask.any():
            kept.append(dict(ann, segmentation=rle(mask), area=int(mask.sum())))
    instances['annotations'] = kept
    out = dict(panoptic=str(root / 'panoptic.json'), instances=str(root / 'instances.json'),
               seg_prefix=str(root / 'panoptic_val'))
    for key, content in (('panoptic', panoptic), ('instances', instances)):
        with open(out[key], 'w') as f:
            json.dump(content, f)
    return out


@pytest.mark.parametrize('mode', ['ann_file', 'segments_info'])
def test_panoptic_ignores_nodata(paths, tmp_path, mode):
    preds = [pred_panoptic(i) for i in range(len(GT_SCENES))]
    kwargs = dict(seg_prefix=paths['seg_prefix'])
    if mode == 'ann_file':
        kwargs['ann_file'] = paths['panoptic']
    plain = run_metric(MultiTaskCocoPanopticMetric(**kwargs), make_samples('.png', panoptic=preds))
    results = run_metric(MultiTaskCocoPanopticMetric(**kwargs),
                         with_nodata(make_samples('.png', panoptic=preds)))
    voided = [np.where(nodata, VOID, pan) for pan, nodata in zip(preds, NODATA)]
    ref = reference_pq(voided_files(paths, tmp_path / 'voided'), tmp_path, voided)
    for key, group in (('', 'All'), ('_th', 'Things'), ('_st', 'Stuff')):
        for name in ('pq', 'sq', 'rq'):
            assert results[f'panoptic/{name.upper()}{key}'] == pytest.approx(
                100 * ref[group][name], abs=1e-6)
    # by hand: both matched cars (and their GT) lie in the nodata areas, leaving car FP 2 (the
    # building predicted as car, the small false car) and FN 1 (the missed car): PQ 0, down
    # from 100 (42/54 + 1) / 3.5; the building trimmed in scene 1 still matches with IoU 1, so
    # building TP 1 FP 1 FN 2 as without nodata: PQ 1 / 2.5
    assert results['panoptic/car_PQ'] == 0.0
    assert plain['panoptic/car_PQ'] == pytest.approx(100 * (42 / 54 + 1) / 3.5, abs=1e-3)
    assert results['panoptic/building_PQ'] == pytest.approx(40.0)


def perfect_panoptic(scene: int, nodata: np.ndarray) -> np.ndarray:
    """The ground truth as an mmdet map, with a false car over the whole nodata area."""
    pan = np.full((H, W), VOID)
    for k, (label, mask) in enumerate(gt_segments(scene), start=1):
        pan[mask] = label + k * INSTANCE_OFFSET if label < 2 else label
    pan[nodata] = CAR + 99 * INSTANCE_OFFSET
    return pan


@pytest.mark.parametrize('mode', ['ann_file', 'segments_info'])
def test_panoptic_perfect_on_valid_pixels_is_100(paths, mode):
    preds = [perfect_panoptic(i, NODATA[i]) for i in range(len(GT_SCENES))]
    kwargs = dict(seg_prefix=paths['seg_prefix'])
    if mode == 'ann_file':
        kwargs['ann_file'] = paths['panoptic']
    results = run_metric(MultiTaskCocoPanopticMetric(**kwargs),
                         with_nodata(make_samples('.png', panoptic=preds)))
    assert [results[key] for key in PQ_KEYS] == [100.0] * 9
    plain = run_metric(MultiTaskCocoPanopticMetric(**kwargs), make_samples('.png', panoptic=preds))
    assert plain['panoptic/PQ'] < 90


def test_panoptic_outfile_prefix_voids_the_prediction_only(paths, tmp_path):
    preds = [perfect_panoptic(i, NODATA[i]) for i in range(len(GT_SCENES))]
    metric = MultiTaskCocoPanopticMetric(ann_file=paths['panoptic'],
                                         seg_prefix=paths['seg_prefix'],
                                         outfile_prefix=str(tmp_path / 'out'), nproc=1)
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        run_metric(metric, with_nodata(make_samples('.png', panoptic=preds)))
    finally:
        logger.removeHandler(handler)
    warned = [r.getMessage() for r in records if 'as the annotation PNGs have it' in r.getMessage()]
    assert len(warned) == 1  # once, not per sample
    dumped = rgb2id(np.array(Image.open(tmp_path / 'out.panoptic' / 'tile_0.png')))
    assert (dumped[NODATA[0]] == 0).all() and (dumped[~NODATA[0]] != 0).any()


def trimmed(instances: List[list]) -> List[list]:
    """Predicted instances without their NODATA pixels; emptied ones dropped."""
    return [[(label, mask & ~NODATA[i], score) for label, mask, score in scene
             if (mask & ~NODATA[i]).any()] for i, scene in enumerate(instances)]


def test_instance_ignores_nodata(paths, tmp_path):
    instances = imperfect_instances()
    metric = MultiTaskCocoMetric(ann_file=paths['instances'])
    results = run_metric(metric, with_nodata(make_samples('.png', instances=instances)))
    stats = reference_ap(voided_files(paths, tmp_path / 'voided'), trimmed(instances))
    for item, index in (('mAP', 0), ('mAP_50', 1), ('mAP_75', 2)):  # percent, 2 decimals
        assert results[f'instance/segm_{item}'] == pytest.approx(100 * stats[index], abs=5e-3)
    plain = reference_ap(paths, instances)
    assert not np.allclose(stats[:3], plain[:3])
    # the metric's own ground truth is untouched: the next evaluation without nodata is plain
    again = run_metric(metric, make_samples('.png', instances=instances))
    assert again['instance/segm_mAP'] == pytest.approx(100 * plain[0], abs=5e-3)


def perfect_instances(with_false_car: bool) -> List[list]:
    """The ground-truth things at score 0.9 (+ a false car at 0.99 over each nodata area)."""
    scenes = []
    for i in range(len(GT_SCENES)):
        scene = [(label, mask, 0.9) for label, mask in gt_segments(i) if label < 2]
        if with_false_car:
            scene.append((CAR, NODATA[i], 0.99))
        scenes.append(scene)
    return scenes


@pytest.mark.parametrize('mode', ['ann_file', 'instances'])
def test_instance_perfect_on_valid_pixels_is_100(paths, mode):
    samples = with_nodata(make_samples('.png', instances=perfect_instances(True)))
    kwargs = dict(ann_file=paths['instances'])
    if mode == 'instances':  # ground truth from the data samples (mmdet's xyxy boxes, RLE masks)
        kwargs = {}
        for i, sample in enumerate(samples):
            sample.set_metainfo(dict(instances=[
                dict(bbox=[int(c.min()), int(r.min()), int(c.max()) + 1, int(r.max()) + 1],
                     bbox_label=label, mask=rle(mask), ignore_flag=0)
                for label, mask in gt_segments(i) if label < 2
                for r, c in [np.nonzero(mask)]]))
    results = run_metric(MultiTaskCocoMetric(**kwargs), samples)
    assert results['instance/segm_mAP'] == 100.0
    assert results['instance/segm_mAP_50'] == 100.0
    plain = run_metric(MultiTaskCocoMetric(ann_file=paths['instances']),
                       make_samples('.png', instances=perfect_instances(True)))
    assert plain['instance/segm_mAP'] < 100.0


def test_nodata_mask_of_another_size_is_refused(paths):
    samples = with_nodata(make_samples('.png', panoptic=[pred_panoptic(0), pred_panoptic(1)]),
                          [np.ones((16, 16), bool)] * 2)
    with pytest.raises(ValueError, match=r'nodata_mask of .*tile_0.png is \(16, 16\) but the '
                                         r'sample is \(32, 32\)'):
        run_metric(MultiTaskCocoPanopticMetric(seg_prefix=paths['seg_prefix']), samples)
    samples = with_nodata(make_samples('.png', instances=imperfect_instances()),
                          [torch.ones(8, 8, dtype=torch.bool).numpy()] * 2)
    with pytest.raises(ValueError, match='MultiTaskCocoMetric: nodata_mask'):
        run_metric(MultiTaskCocoMetric(ann_file=paths['instances']), samples)
