"""All nine metrics in one val/test loop: PQ/SQ/RQ, AP/AP50/AP75, mIoU/mAcc/OA (percent).

Keys: ``panoptic/{PQ,SQ,RQ}`` (+ ``_th``/``_st``), ``instance/segm_mAP{,_50,_75}``,
``semantic/{mIoU,mAcc,OA}``. A dataset config inheriting this file fills the annotation paths:

    _base_ = ['./multitask_evaluator.py']
    data_root = 'data/semcity_toulouse/'
    val_evaluator = [
        dict(_base_.val_evaluator[0],
             ann_file=data_root + 'annotations/panoptic_val.json',
             seg_prefix=data_root + 'annotations/panoptic_val/'),
        dict(_base_.val_evaluator[1], ann_file=data_root + 'annotations/instances_val.json'),
        _base_.val_evaluator[2],
    ]
    test_evaluator = val_evaluator

The semantic metric falls back to the panoptic prediction when a model gives no
``pred_sem_seg`` (stock Mask2Former baselines), counting void pixels as misses.
"""
val_evaluator = [
    dict(type='MultiTaskCocoPanopticMetric', classwise=True, prefix='panoptic'),
    dict(type='MultiTaskCocoMetric', metric='segm', classwise=True, prefix='instance'),
    dict(type='MultiTaskSemSegMetric', prefix='semantic'),
]
test_evaluator = val_evaluator
