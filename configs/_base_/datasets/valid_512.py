# VALID virtual aerial, optical + depth, resized 1024 -> 512; train 3345, val 1115, test 2230
# (the paper reports the test split). Prepare it with (docs/dataset_prepare.md):
#   python tools/dataset_converters/valid.py --src data/raw/VALID --ann-dir <annotation folder> \
#       --out data/valid --workers 8
_base_ = ['./multitask_evaluator.py']
dataset_type = 'VALIDDataset'
data_root = 'data/valid/'
aux_modality = 'depth'
image_size = (512, 512)
backend_args = None
# category names, things first (= the dataset class METAINFO['classes'], checked by
# tests/test_tools/test_converters.py); PMTSeg's label prompts use them
class_names = ('tree', 'sign', 'small vehicle', 'large vehicle', 'building', 'animal', 'person',
               'chair', 'garbage bin', 'low obstacle', 'telegraph pole', 'traffic light', 'bus stop',
               'lamp', 'high obstacle', 'ship', 'plane', 'plant', 'road', 'pavement', 'land',
               'water', 'pool', 'ice', 'stone', 'pier rubble', 'bridge', 'fence', 'tunnel',
               'harbor')

# channel order of the stacked image: optical (BGR, as decoded from the 8-bit PNG) then depth (m)
modalities = {'optical': dict(channels=3), aux_modality: dict(channels=1)}
modality_channels = (3, 1)
# Per-band mean/std of the train split, optical in RGB order, from data/valid/modality_stats.json
# written by the converter (depth in metres after --depth-scale). The raw dataset was not
# available when this file was written: the values below are placeholders (ImageNet RGB; depth
# around the 20/50/100 m flight altitudes) -- paste yours from that file.
modality_mean = [[123.675, 116.28, 103.53], [60.0]]
modality_std = [[58.395, 57.12, 57.375], [35.0]]
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction', 'modalities', 'modality_channels')
modality_suffixes = {'optical': '.png', aux_modality: '.tif'}

train_pipeline = [
    dict(type='LoadMultiModalImages', modalities=modalities, backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='ModalityTransform', modality='optical',
         transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='RandomFlip', prob=0.5),
    # large-scale jitter (paper IV-C: 0.1-2.0, then crop to the input size)
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), resize_type='Resize',
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadMultiModalImages', modalities=modalities, backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'modalities',
                    'modality_channels')),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='AspectRatioBatchSampler'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='optical/train/', seg='annotations/panoptic_train/'),
        modalities=dict(optical='optical/train/', **{aux_modality: f'{aux_modality}/train/'}),
        modality_suffixes=modality_suffixes,
        # images without things still carry stuff labels: keep them
        filter_cfg=dict(filter_empty_gt=False, min_size=8),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
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
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/panoptic_test.json',
        data_prefix=dict(img='optical/test/', seg='annotations/panoptic_test/'),
        modalities=dict(optical='optical/test/', **{aux_modality: f'{aux_modality}/test/'}),
        modality_suffixes=modality_suffixes,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))

# all nine metrics in one loop with the package's fixed metrics (multitask_evaluator.py)
val_evaluator = [
    dict(_base_.val_evaluator[0], ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/', backend_args=backend_args),
    dict(_base_.val_evaluator[1], ann_file=data_root + 'annotations/instances_val.json',
         backend_args=backend_args),
    _base_.val_evaluator[2],
]
test_evaluator = [
    dict(_base_.val_evaluator[0], ann_file=data_root + 'annotations/panoptic_test.json',
         seg_prefix=data_root + 'annotations/panoptic_test/', backend_args=backend_args),
    dict(_base_.val_evaluator[1], ann_file=data_root + 'annotations/instances_test.json',
         backend_args=backend_args),
    _base_.val_evaluator[2],
]
