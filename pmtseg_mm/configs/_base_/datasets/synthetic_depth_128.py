# Embedded synthetic optical + depth dataset (tools/dataset_converters/synthetic.py), 128x128;
# the same values as configs/_base_/datasets/synthetic_depth_128.py.
from mmdet.datasets.samplers import AspectRatioBatchSampler
from mmdet.datasets.transforms import (FilterAnnotations, LoadPanopticAnnotations,
                                       PackDetInputs, PhotoMetricDistortion, RandomCrop,
                                       RandomFlip, Resize)
from mmcv.transforms import RandomResize
from mmengine.config import read_base
from mmengine.dataset.sampler import DefaultSampler, InfiniteSampler

from pmtseg_mm.datasets import SyntheticRSDataset
from pmtseg_mm.datasets.transforms import LoadMultiModalImages, ModalityTransform

with read_base():
    from .multitask_evaluator import *  # noqa: F401,F403

dataset_type = SyntheticRSDataset
data_root = 'data/synthetic_depth/'
aux_modality = 'depth'
image_size = (128, 128)
backend_args = None
modalities = {'optical': dict(channels=3), aux_modality: dict(channels=1)}
modality_channels = (3, 1)
modality_mean = [[123.675, 116.28, 103.53], [1.0171]]
modality_std = [[58.395, 57.12, 57.375], [3.0499]]
modality_suffixes = {'optical': '.png', aux_modality: '.tif'}
lsj_ratio_range = (0.5, 1.5)
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction', 'modalities', 'modality_channels')

train_pipeline = [
    dict(type=LoadMultiModalImages, modalities=modalities, backend_args=backend_args),
    dict(type=LoadPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type=ModalityTransform, modality='optical', transforms=[dict(type=PhotoMetricDistortion)]),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomResize, scale=image_size, ratio_range=lsj_ratio_range, resize_type=Resize,
         keep_ratio=True),
    dict(type=RandomCrop, crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type=FilterAnnotations, min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type=PackDetInputs, meta_keys=meta_keys),
]
test_pipeline = [
    dict(type=LoadMultiModalImages, modalities=modalities, backend_args=backend_args),
    dict(type=Resize, scale=image_size, keep_ratio=True),
    dict(type=LoadPanopticAnnotations, with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type=PackDetInputs,
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'modalities',
                    'modality_channels', 'modality_paths')),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    batch_sampler=dict(type=AspectRatioBatchSampler),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='optical/train/', seg='annotations/panoptic_train/'),
        modalities=dict(optical='optical/train/', **{aux_modality: f'{aux_modality}/train/'}),
        modality_suffixes=modality_suffixes,
        filter_cfg=dict(filter_empty_gt=False, min_size=8),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type=DefaultSampler, shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='optical/val/', seg='annotations/panoptic_val/'),
        modalities=dict(optical='optical/val/', **{aux_modality: f'{aux_modality}/val/'}),
        modality_suffixes=modality_suffixes,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = [
    dict(panoptic_metric, ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/', backend_args=backend_args),
    dict(instance_metric, ann_file=data_root + 'annotations/instances_val.json',
         backend_args=backend_args),
    semantic_metric,
]
test_evaluator = val_evaluator
