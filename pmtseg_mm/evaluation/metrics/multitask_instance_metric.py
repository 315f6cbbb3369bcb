"""Instance segmentation scores (mask AP, AP50, AP75) of a multi-task model."""
from typing import Dict, List, Optional, Sequence, Union

from unittest import mock

import numpy as np
import pycocotools.mask as mask_util
import torch
from mmdet.datasets.api_wrappers import COCO, COCOeval
from mmdet.evaluation.metrics import CocoMetric, coco_metric
from mmdet.registry import METRICS
from mmdet.structures.mask import mask2bbox
from mmengine.logging import MMLogger, print_log

from .nodata import nodata_mask, to_rle, trim_annotation
from .skipped_samples import report_skipped

AP_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')
# index of each AP item in COCOeval.stats
COCO_STATS = dict(mAP=0, mAP_50=1, mAP_75=2, mAP_s=3, mAP_m=4, mAP_l=5)


@METRICS.register_module()
class MultiTaskCocoMetric(CocoMetric):
    """mmdet :class:`CocoMetric` (mask AP by default) under the prefix ``instance``.

    Results: ``segm_mAP``, ``segm_mAP_50``, ``segm_mAP_75`` (+ ``_s/_m/_l`` and, with
    ``classwise``, ``segm_<class>_AP``) in **percent** with 2 decimals, like PQ and mIoU and the
    paper's tables (mmdet reports fractions rounded to 3 decimals: here COCOeval's ``stats`` are
    read unrounded); pycocotools' ``-1`` (no ground truth in an area range) stays ``-1``.
    Differences from the stock metric:

    - **Labels to category ids by name.** Predicted labels index the dataset ``classes``, whose
      first entries are the ``thing_classes``; the instance JSON lists the thing categories only.
      mmdet maps label ``i`` to the ``i``-th JSON category whose name is a class, i.e. it trusts the
      JSON order; here label ``i`` maps to the id of the category named ``thing_classes[i]``.
      ``ValueError`` when a thing class is missing from the JSON, the classes do not start with the
      thing classes, or a prediction carries a stuff label.
    - **Empty predictions** (no instance in any image) score 0 for every AP item; mmdet logs an
      error and returns no keys.
    - **Nodata.** Pixels of a sample's ``nodata_mask`` (packed by the shipped test pipeline,
      see :class:`VoidNodata`) leave the predicted and the ground-truth masks (the ground truth
      in a copy of ``ann_file``'s annotations); instances left without a pixel are dropped and
      boxes are recomputed from the trimmed masks, so nodata pixels count for nothing.
    - Only the evaluated images are scored (mmdet scores every image of ``ann_file``, counting
      skipped ones as all missed); samples without ``pred_instances`` are skipped with a warning,
      ``ValueError`` when none has them.

    Args:
        ann_file (str, optional): COCO instances JSON of the things, e.g.
            ``data_root + 'annotations/instances_val.json'``.
        metric (str | list[str]): ``'segm'`` and/or ``'bbox'``. Defaults to ``'segm'``.
        classwise (bool): Log the per-class AP table. Defaults to True.
        **kwargs: the other arguments of mmdet's :class:`CocoMetric` (``iou_thrs``,
            ``metric_items``, ``format_only``, ``outfile_prefix``, ``backend_args``, ...).
    """
    default_prefix: Optional[str] = 'instance'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 metric: Union[str, Sequence[str]] = 'segm',
                 classwise: bool = True,
                 **kwargs) -> None:
        metrics = [metric] if isinstance(metric, str) else list(metric)
        if not metrics or not set(metrics) <= {'segm', 'bbox'}:
            raise ValueError(f"{type(self).__name__}: `metric` must be 'segm', 'bbox' or a list "
                             f'of them, got {metric!r}')
        super().__init__(ann_file=ann_file, metric=metrics, classwise=classwise, **kwargs)
        self._num_skipped = 0
        self._warned_maskless = False

    def _thing_cat_ids(self) -> Optional[List[int]]:
        """Category id of each thing label, looked up by name in ``ann_file``."""
        things = self.dataset_meta.get('thing_classes')
        if things is None or self._coco_api is None:
            return None
        classes = self.dataset_meta['classes']
        if tuple(classes[:len(things)]) != tuple(things):
            raise ValueError(f'{type(self).__name__}: dataset classes {tuple(classes)} must start '
                             f'with the thing_classes {tuple(things)}')
        name_to_id = {cat['name']: cat['id'] for cat in self._coco_api.dataset['categories']}
        missing = [name for name in things if name not in name_to_id]
        if missing:
            raise ValueError(f'{type(self).__name__}: thing classes {missing} are not categories '
                             f'of `ann_file` (it has {sorted(name_to_id)})')
        return [name_to_id[name] for name in things]

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Encode the ``pred_instances`` of each sample (dicts from ``to_dict()``)."""
        things = self.dataset_meta.get('thing_classes')
        usable = []
        for data_sample in data_samples:
            if 'pred_instances' not in data_sample:
                self._num_skipped += 1
                continue
            labels = data_sample['pred_instances']['labels']
            if things is not None and labels.numel() and int(labels.max()) >= len(things):
                raise ValueError(
                    f'{type(self).__name__}: pred_instances of {data_sample.get("img_path")} has '
                    f'label {int(labels.max())}, but instance labels must be thing classes '
                    f'(< {len(things)})')
            nodata = nodata_mask(data_sample, type(self).__name__)
            usable.append(data_sample if nodata is None else
                          self._without_nodata(data_sample, nodata))
        if usable:
            start = len(self.results)
            super().process(data_batch, usable)
            for (gt, _), sample in zip(self.results[start:], usable):
                if 'nodata' in sample:  # for the ground truth of ``ann_file``
                    gt['nodata'] = sample['nodata']

    def _without_nodata(self, data_sample: dict, nodata: np.ndarray) -> dict:
        """The sample with its predicted (and ``instances``) masks trimmed to valid pixels."""
        pred = dict(data_sample['pred_instances'])
        masks = torch.as_tensor(pred['masks']).bool()
        masks = masks & torch.from_numpy(~nodata).to(masks.device)
        keep = masks.flatten(1).any(1)
        pred = {key: value[keep] for key, value in pred.items()}
        pred['masks'] = masks[keep]
        pred['bboxes'] = mask2bbox(masks[keep]).to(pred['bboxes'])
        sample = dict(data_sample, pred_instances=pred, nodata=to_rle(nodata))
        if self._coco_api is None and 'instances' in data_sample:
            if any(not ann.get('mask') for ann in data_sample['instances']):
                self._warn_maskless()
            trimmed = [trim_annotation(ann, 'mask', nodata) if ann.get('mask') else ann
                       for ann in data_sample['instances']]
            sample['instances'] = [ann for ann in trimmed if ann is not None]
        return sample

    def _warn_maskless(self) -> None:
        if not self._warned_maskless:
            print_log(f'{type(self).__name__}: ground-truth instances without a mask (no '
                      '`ann_file`) cannot be trimmed to the valid pixels; they are scored as '
                      'they are', 'current', level=30)
            self._warned_maskless = True

    @staticmethod
    def _void_ground_truth(coco: COCO, nodata: Dict[int, dict]) -> COCO:
        """A copy of ``coco`` whose annotations of the given images lose their nodata pixels."""
        masks = {img_id: mask_util.decode(rle).astype(bool) for img_id, rle in nodata.items()}
        for img_id, mask in masks.items():
            img = coco.imgs[img_id]
            if (img['height'], img['width']) != mask.shape:
                raise ValueError(f'MultiTaskCocoMetric: image {img_id} ({img.get("file_name")}) '
                                 f'is {img["height"]}x{img["width"]} in `ann_file` but its '
                                 f'nodata_mask is {mask.shape[0]}x{mask.shape[1]}')
        annotations = []
        for ann in coco.dataset['annotations']:
            if ann['image_id'] in masks:
                ann = trim_annotation(ann, 'segmentation', masks[ann['image_id']])
            if ann is not None:
                annotations.append(ann)
        voided = type(coco)()
        voided.dataset = dict(coco.dataset, annotations=annotations)
        voided.createIndex()
        return voided

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """AP items in percent (``-1`` kept), or 0 for all when nothing was predicted."""
        report_skipped(self, len(results), '`pred_instances`', ['instance'])
        nodata = {gt['img_id']: gt.pop('nodata') for gt, _ in results if 'nodata' in gt}
        original = self._coco_api
        if nodata and original is not None:
            self._coco_api = self._void_ground_truth(original, nodata)
        try:
            return self._scores(results)
        finally:
            self._coco_api = original

    def _scores(self, results: list) -> Dict[str, float]:
        logger: MMLogger = MMLogger.get_current_instance()
        cat_ids = self._thing_cat_ids()
        if cat_ids is not None:
            self.cat_ids = cat_ids
        if self._coco_api is not None:
            img_ids = sorted({gt['img_id'] for gt, _ in results})
            unknown = sorted(set(img_ids) - set(self._coco_api.get_img_ids()))
            if unknown:
                raise ValueError(f'{type(self).__name__}: img_id {unknown} are not images of '
                                 '`ann_file`; it must describe the evaluated split')
            self.img_ids = img_ids
        if not self.format_only and all(len(pred['labels']) == 0 for _, pred in results):
            logger.warning(f'{type(self).__name__}: no instance predicted in any image; '
                           'every AP item is 0')
            items = self.metric_items or AP_ITEMS
            return {f'{metric}_{item}': 0.0 for metric in self.metrics for item in items}
        evaluated: List[COCOeval] = []

        class RecordingCOCOeval(COCOeval):
            """mmdet's COCOeval, kept so its stats are read unrounded (mmdet keeps 3 decimals)."""

            def summarize(self) -> None:
                super().summarize()
                evaluated.append(self)

        with mock.patch.object(coco_metric, 'COCOeval', RecordingCOCOeval):
            eval_results = super().compute_metrics(results)
        items = self.metric_items or AP_ITEMS
        for metric, coco_eval in zip(self.metrics, evaluated):
            for item in items:
                if item in COCO_STATS:
                    eval_results[f'{metric}_{item}'] = float(coco_eval.stats[COCO_STATS[item]])
            if self.classwise:  # per-class AP over IoU 0.50:0.95, all areas, 100 detections
                precision = coco_eval.eval['precision'][:, :, :, 0, -1]
                for idx, cat_id in enumerate(coco_eval.params.catIds):
                    values = precision[:, :, idx]
                    values = values[values > -1]
                    name = self._coco_api.cats[int(cat_id)]['name']
                    eval_results.pop(f'{name}_precision', None)  # mmdet's rounded copy
                    eval_results[f'{metric}_{name}_AP'] = (
                        float(values.mean()) if values.size else -1.0)
        return {
            key: value if value < 0 else round(value * 100, 2)
            for key, value in eval_results.items()
        }
