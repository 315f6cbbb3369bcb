# UBCV2 multi-modal fine-grained roofs (or DFC2023 track 1), optical + SAR, 512x512; train 4008,
# val 1681 in the paper. Prepare it with (docs/dataset_prepare.md):
#   python tools/dataset_converters/ubcv2.py \
#       --src data/raw/UBC_v2.0/multi-modal_fine-grained_building_roof_instance_segmentation \
#       --out data/ubcv2 --workers 8
_base_ = ['./multitask_evaluator.py']
dataset_type = 'UBCV2Dataset'
data_root = 'data/ubcv2/'
aux_modality = 'sar'
image_size = (512, 512)
backend_args = None
# category names, things first (= the dataset class METAINFO['classes'], checked by
# tests/test_tools/test_converters.py); PMTSeg's label prompts use them
class_names = ('flat_roof', 'gable_roof', 'gambrel_roof', 'row_roof', 'multiple_eave_roof',
               'hipped_roof_v1', 'hipped_roof_v2', 'mansard_roof', 'pyramid_roof', 'arched_roof',
               'revolved', 'other', 'background')

# channel order of the stacked image: optical (BGR, as decoded from the 8-bit PNG) then SAR
modalities = {'optical': dict(channels=3), aux_modality: dict(channels=1)}
modality_channels = (3, 1)
# Per-band mean/std of the train split, optical in RGB order, from data/ubcv2/modality_stats.json
# written by the converter (SAR in its stored units). The raw dataset was not available when this
# file was written: the values below are placeholders (ImageNet RGB; SAR as 8-bit mid-range) --
# paste yours from that file.
modality_mean = [[123.675, 116.28, 103.53], [127.5]]
modality_std = [[58.395, 57.12, 57.375], [64.0]]
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
        # tiles without a roof still carry the background segment: keep them
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
