# Embedded synthetic optical + depth dataset (tools/dataset_converters/synthetic.py), 128x128.
# Generate it with:
#   python tools/dataset_converters/synthetic.py --out data/synthetic_depth --num-train 400 \
#       --num-val 100 --size 128 --aux depth --seed 0
_base_ = ['./multitask_evaluator.py']
dataset_type = 'SyntheticRSDataset'
data_root = 'data/synthetic_depth/'
aux_modality = 'depth'
image_size = (128, 128)
backend_args = None

# channel order of the stacked image: optical (BGR, as decoded) then depth (metres)
modalities = {'optical': dict(channels=3), aux_modality: dict(channels=1)}
# per-modality statistics: optical RGB as in mmdet (ImageNet); depth from
# data/synthetic_depth/modality_stats.json (400 train images, seed 0)
modality_channels = (3, 1)
modality_mean = [[123.675, 116.28, 103.53], [1.0171]]
modality_std = [[58.395, 57.12, 57.375], [3.0499]]
# milder scale jitter than the paper's 0.1-2.0 (kept by the real-dataset configs): at 0.1x the
# synthetic things (16-32 px buildings, 10-24 px trees, 6x12 px cars at 128 px) shrink below one
# mask-feature cell (1/4 resolution) and vanish from the crop.
lsj_ratio_range = (0.5, 1.5)
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction', 'modalities', 'modality_channels')

train_pipeline = [
    dict(type='LoadMultiModalImages', modalities=modalities, backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='ModalityTransform', modality='optical',
         transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=lsj_ratio_range, resize_type='Resize',
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
                    'modality_channels', 'modality_paths')),
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
        modality_suffixes={'optical': '.png', aux_modality: '.tif'},
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
        modality_suffixes={'optical': '.png', aux_modality: '.tif'},
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# all nine metrics in one loop with the package's fixed metrics (multitask_evaluator.py)
val_evaluator = [
    dict(_base_.val_evaluator[0], ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/', backend_args=backend_args),
    dict(_base_.val_evaluator[1], ann_file=data_root + 'annotations/instances_val.json',
         backend_args=backend_args),
    _base_.val_evaluator[2],
]
test_evaluator = val_evaluator
