"""Panoptic quality (PQ, SQ, RQ) of a multi-task model, per class as in the paper's Fig. 10."""
import os.path as osp
import tempfile
from typing import Dict, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from mmdet.evaluation.functional import pq_compute_single_core
from mmdet.evaluation.metrics import CocoPanopticMetric
from mmdet.evaluation.metrics.coco_panoptic_metric import (parse_pq_results,
                                                           print_panoptic_table)
from mmdet.registry import METRICS
from mmengine.fileio import get
from mmengine.logging import MMLogger, print_log
from panopticapi.evaluation import VOID, PQStat
from panopticapi.utils import id2rgb, rgb2id

from .nodata import nodata_mask
from .skipped_samples import report_skipped

_GROUPS = (('All', None), ('Things', True), ('Stuff', False))


@METRICS.register_module()
class MultiTaskCocoPanopticMetric(CocoPanopticMetric):
    """mmdet :class:`CocoPanopticMetric` for multimodal remote-sensing data.

    Results (percent, like mmdet): ``PQ``, ``SQ``, ``RQ`` and their ``_th`` (things) and ``_st``
    (stuff) variants, under the prefix ``panoptic``. Fixes over the stock metric:

    - **PNG names.** mmdet names the panoptic PNG of a sample after ``img_path`` with ``.jpg``
      replaced by ``.png``, so ``.tif`` optical files look for ``<stem>.tif`` PNGs. Here the name
      is the ``file_name`` of the image's annotation in ``ann_file`` (or ``<stem>.png`` without
      one), whatever the image extension.
    - **Missing predictions.** Samples without ``pred_panoptic_seg`` are skipped with a warning;
      ``ValueError`` when no sample has one.
    - **No in-place edit.** mmdet writes VOID into the predicted tensor; a copy is passed instead,
      so metrics later in the same ``Evaluator`` (e.g. semantic from panoptic) see the prediction.
    - **Nodata.** Pixels of a sample's ``nodata_mask`` (packed by the shipped test pipeline,
      see :class:`VoidNodata`) are void in the prediction and in the ground truth: the PNG is
      voided there (in a temporary copy) and segments left without a pixel are dropped, so they
      count neither as matches nor as misses. With ``outfile_prefix`` only the dumped prediction
      is voided (mmdet scores the files; a warning says so).
    - **Per-class table** keyed by category name (``nan`` for classes absent from both ground
      truth and prediction), logged and returned as ``<class>_PQ`` (not with ``outfile_prefix``,
      where mmdet scores the dumped files); a group without any segment
      (e.g. no stuff) reports ``nan`` instead of dividing by zero.

    Args:
        ann_file (str, optional): COCO panoptic JSON, e.g.
            ``data_root + 'annotations/panoptic_val.json'``. Without it the samples must carry
            ``segments_info`` (and ``seg_map_path`` when ``outfile_prefix`` is set).
        seg_prefix (str, optional): Folder of the ground-truth PNGs, e.g.
            ``data_root + 'annotations/panoptic_val/'``. Required unless ``outfile_prefix`` is set
            without ``ann_file`` (then the PNG folder comes from ``seg_map_path``).
        classwise (bool): Log the per-class PQ/SQ/RQ table and return ``<class>_PQ``.
            Defaults to True.
        format_only, outfile_prefix, **kwargs (``nproc``, ``backend_args``, ``prefix``, ...): as
            in mmdet's :class:`CocoPanopticMetric`.
    """
    default_prefix: Optional[str] = 'panoptic'

    def __init__(self,
                 ann_file: Optional[str] = None,
                 seg_prefix: Optional[str] = None,
                 classwise: bool = True,
                 format_only: bool = False,
                 outfile_prefix: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(ann_file=ann_file, seg_prefix=seg_prefix, classwise=classwise,
                         format_only=format_only, outfile_prefix=outfile_prefix, **kwargs)
        reads_gt_folder = outfile_prefix is None or (ann_file is not None and not format_only)
        if seg_prefix is None and reads_gt_folder:
            raise ValueError(f'{type(self).__name__}: `seg_prefix` (folder of the ground-truth '
                             "panoptic PNGs, e.g. data_root + 'annotations/panoptic_val/') is "
                             'required, got None')
        if self._coco_api is not None:
            # mmdet's COCOPanoptic guesses the PNG name from the image name; use the real one.
            for ann in self._coco_api.dataset['annotations']:
                self._coco_api.imgs[ann['image_id']]['segm_file'] = ann['file_name']
        self._num_skipped = 0
        self._void_gt: Optional[tempfile.TemporaryDirectory] = None
        self._warned_outfile_nodata = False

    def _png_name(self, data_sample: dict) -> str:
        """File name of the sample's panoptic PNG (ground truth and prediction)."""
        if self._coco_api is not None and data_sample['img_id'] in self._coco_api.imgs:
            return self._coco_api.imgs[data_sample['img_id']]['segm_file']
        return osp.splitext(osp.basename(data_sample['img_path']))[0] + '.png'

    def _check_categories(self) -> None:
        if self._coco_api is None:
            return
        names = {cat['name'] for cat in self._coco_api.cats.values()}
        missing = [name for name in self.dataset_meta['classes'] if name not in names]
        if missing:
            raise ValueError(f'{type(self).__name__}: classes {missing} of the dataset are not '
                             f'categories of `ann_file` (it has {sorted(names)})')

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Score the samples that have ``pred_panoptic_seg`` (dicts from ``to_dict()``)."""
        self._check_categories()
        usable = []
        for data_sample in data_samples:
            if 'pred_panoptic_seg' not in data_sample:
                self._num_skipped += 1
                continue
            pred = dict(data_sample['pred_panoptic_seg'])
            pred['sem_seg'] = pred['sem_seg'].clone()  # mmdet writes VOID into it in place
            # mmdet derives the PNG name from ``img_path`` (replacing '.jpg' only): give it the name
            sample = dict(data_sample, img_path=self._png_name(data_sample), pred_panoptic_seg=pred)
            nodata = nodata_mask(data_sample, type(self).__name__)
            if nodata is not None:
                void_label = len(self.dataset_meta['classes'])  # mmdet's VOID in predictions
                pred['sem_seg'][0][torch.from_numpy(nodata).to(pred['sem_seg'].device)] = void_label
                if self.tmp_dir is not None:
                    self.results.append(self._pq_stat_without_nodata(sample, nodata))
                    continue
                self._warn_outfile_nodata()
            usable.append(sample)
        if usable:
            super().process(data_batch, usable)

    def _warn_outfile_nodata(self) -> None:
        if not self._warned_outfile_nodata and not self.format_only:
            print_log(f'{type(self).__name__}: with `outfile_prefix` mmdet scores the dumped '
                      'files, so nodata pixels are void in the prediction but the ground truth '
                      'is scored as the annotation PNGs have it', 'current', level=30)
            self._warned_outfile_nodata = True

    def _pq_stat_without_nodata(self, sample: dict, nodata: np.ndarray) -> PQStat:
        """PQ statistics of one sample whose nodata pixels are void in prediction and GT."""
        if self._coco_api is None:
            categories, label2cat = self._label_categories(), None
        else:
            categories = self.categories
            cat_ids = self._coco_api.get_cat_ids(cat_names=self.dataset_meta['classes'])
            label2cat = dict(enumerate(cat_ids))
        segm_file, img_id = sample['img_path'], sample['img_id']
        result = self._parse_predictions(pred=sample, img_id=img_id, segm_file=segm_file,
                                         label2cat=label2cat)
        gt_path = osp.join(self.seg_prefix, segm_file)
        ids = rgb2id(mmcv.imfrombytes(get(gt_path, backend_args=self.backend_args),
                                      flag='color', channel_order='rgb'))
        if ids.shape != nodata.shape:
            raise ValueError(f'{type(self).__name__}: {gt_path} is {ids.shape} but the nodata_mask '
                             f'of its sample is {nodata.shape}')
        ids[nodata] = VOID
        area = dict(zip(*(values.tolist() for values in np.unique(ids, return_counts=True))))
        if self._coco_api is None:
            segments = [dict(id=s['id'], category_id=s['category'],
                             iscrowd=int(categories[s['category']]['isthing'] == 1
                                         and not s['is_thing']))
                        for s in sample['segments_info'] if s['id'] in area]
        else:
            segments = [dict(s) for s in self._coco_api.imgToAnns[img_id] if s['id'] in area]
        for segment in segments:  # panopticapi takes the GT areas from here, not from the PNG
            segment['area'] = area[segment['id']]
        if self._void_gt is None:
            self._void_gt = tempfile.TemporaryDirectory()
        mmcv.imwrite(id2rgb(ids)[:, :, ::-1], osp.join(self._void_gt.name, segm_file))
        gt = dict(image_id=img_id, file_name=segm_file, segments_info=segments,
                  height=nodata.shape[0], width=nodata.shape[1])
        return pq_compute_single_core(proc_id=0, annotation_set=[(gt, result)],
                                      gt_folder=self._void_gt.name,
                                      pred_folder=self.seg_out_dir, categories=categories)

    def _label_categories(self) -> Dict[int, dict]:
        """Categories keyed by label index, as mmdet uses them without ``ann_file``."""
        things = set(self.dataset_meta['thing_classes'])
        return {
            label: dict(id=label, name=name, isthing=int(name in things))
            for label, name in enumerate(self.dataset_meta['classes'])
        }

    @staticmethod
    def _average(pq_stat: PQStat, categories: Dict[int, dict],
                 isthing: Optional[bool]) -> Tuple[dict, Dict[int, dict]]:
        """``PQStat.pq_average`` with ``nan`` (not ZeroDivisionError) for an empty group/class."""
        nan = float('nan')
        empty = {cat_id for cat_id in categories
                 if pq_stat[cat_id].tp + pq_stat[cat_id].fp + pq_stat[cat_id].fn == 0}
        group = [cat_id for cat_id, cat in categories.items()
                 if isthing is None or (cat['isthing'] == 1) == isthing]
        if all(cat_id in empty for cat_id in group):
            return dict(pq=nan, sq=nan, rq=nan, n=0), {
                cat_id: dict(pq=nan, sq=nan, rq=nan) for cat_id in group}
        average, per_class = pq_stat.pq_average(categories, isthing=isthing)
        per_class.update({cat_id: dict(pq=nan, sq=nan, rq=nan) for cat_id in empty & set(group)})
        return average, per_class

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """PQ/SQ/RQ (percent) over all classes, things (``_th``) and stuff (``_st``)."""
        logger: MMLogger = MMLogger.get_current_instance()
        report_skipped(self, len(results), '`pred_panoptic_seg`', ['panoptic'])
        if self.tmp_dir is None:  # outfile_prefix set: mmdet dumps JSON + PNGs, then scores them
            return super().compute_metrics(results)

        categories = self.categories if self._coco_api is not None else self._label_categories()
        pq_stat = PQStat()
        for batch_stat in results:
            pq_stat += batch_stat
        pq_results = {}
        per_class = {}
        for name, isthing in _GROUPS:
            pq_results[name], group_per_class = self._average(pq_stat, categories, isthing)
            if isthing is None:
                per_class = group_per_class
        classwise = None
        if self.classwise:
            classwise = {categories[cat_id]['name']: per_class[cat_id] for cat_id in categories}
        print_panoptic_table(pq_results, classwise, logger=logger)
        metrics = parse_pq_results(pq_results)
        if classwise:
            metrics.update({f'{name}_PQ': round(100 * scores['pq'], 3)
                            for name, scores in classwise.items()})
        return metrics
