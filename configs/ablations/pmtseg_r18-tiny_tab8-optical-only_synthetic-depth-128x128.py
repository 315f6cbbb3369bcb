# Table VIII "Optical": PMTSeg trained and tested on the optical modality alone - one backbone,
# TMSF passes its pixel-decoder output through (nothing to fuse), L_TMAA is 0 (no modality
# pair), PSH unchanged.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
modalities = dict(optical=dict(channels=3))
model = dict(
    data_preprocessor=dict(modality_channels=(3, ), mean=[[123.675, 116.28, 103.53]],
                           std=[[58.395, 57.12, 57.375]]),
    backbone=dict(in_channels=(3, ), backbones=[{{_base_.r18}}]),
    neck=dict(num_modalities=1, in_channels=[[64, 128, 256, 512]]))
train_pipeline = [
    dict(type='LoadMultiModalImages', modalities=modalities),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='ModalityTransform', modality='optical',
         transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale={{_base_.image_size}}, ratio_range={{_base_.lsj_ratio_range}},
         resize_type='Resize', keep_ratio=True),
    dict(type='RandomCrop', crop_size={{_base_.image_size}}, crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs', meta_keys={{_base_.meta_keys}}),
]
test_pipeline = [
    dict(type='LoadMultiModalImages', modalities=modalities),
    dict(type='Resize', scale={{_base_.image_size}}, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'modalities',
                    'modality_channels', 'modality_paths')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
