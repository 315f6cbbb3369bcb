# Tiny PMTSeg trained with modality dropout: with probability 0.3 a training sample loses its
# depth, blanked to the depth normalisation mean (normalised input 0) - the same fill that
# inference with a declared missing modality feeds (MultiModalInferencer(missing=('depth',)),
# demo --missing depth). Tested with both modalities; the *_test-optical-only twin tests the same
# training without depth.
_base_ = './pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'

train_pipeline = [
    dict(type='LoadMultiModalImages', modalities={{_base_.modalities}},
         backend_args={{_base_.backend_args}}),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args={{_base_.backend_args}}),
    dict(type='ModalityTransform', modality='optical',
         transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='ModalityDropout', prob=0.3, modalities=['depth'], fill={{_base_.modality_mean}},
         bgr_to_rgb=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale={{_base_.image_size}}, ratio_range={{_base_.lsj_ratio_range}},
         resize_type='Resize', keep_ratio=True),
    dict(type='RandomCrop', crop_size={{_base_.image_size}}, crop_type='absolute',
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                    'flip_direction', 'modalities', 'modality_channels', 'missing_modalities')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
