# The multimodal COCO-panoptic data section shared by every dataset base, written once: the
# train/test pipelines, the dataloaders, the MultiTask* evaluators (multitask_evaluator.py) and
# the dataset's part of the model (`dataset_model`: preprocessor statistics and padding, class
# counts and class weights), which the top-level configs merge into their model.
#
# A dataset base inherits this file, sets the values of the first block and fills the parts
# built from them. mmengine evaluates each base with its own variables (a value changed in a
# child does not reach what this file built from it) and replaces lists instead of merging them,
# so a dataset base overrides, by key, only what its values change:
#
#     pipeline_values = dict(modalities=modalities, order=list(modalities), scale=image_size,
#                            crop_size=image_size, ratio_range=lsj_ratio_range)
#     train_pipeline = [dict(t, **{k: v for k, v in pipeline_values.items() if k in t})
#                       for t in _base_.train_pipeline]
#     train_dataloader = dict(dataset=dict(type=dataset_type, data_root=data_root, ...))
#
# (see synthetic_depth_128.py). tests/test_configs.py checks that every dataset base has filled
# every value (no None or empty placeholder left) and keeps this file's steps and their order.
_base_ = ['./multitask_evaluator.py']

# --- values every dataset base sets ---
dataset_type = None
data_root = None  # ends with '/'
image_size = None  # (h, w) of the training crop and of the test resize
# modalities in channel order (the stacked image), with LoadMultiModalImages options (the dict
# placeholders are empty: mmengine merges a child's dict into a dict, not into None)
modalities = {}  # e.g. {'optical': dict(channels=3), 'depth': dict(channels=1)}
modality_suffixes = {}  # e.g. {'optical': '.png', 'depth': '.tif'}
modality_channels = None  # e.g. (3, 1)
modality_mean = None  # per modality, optical in RGB order: [[r, g, b], [aux]]
modality_std = None
num_things_classes = None
num_stuff_classes = None
class_names = None  # things first (the dataset class METAINFO['classes'])
# large-scale jitter: scale range of RandomResize before the crop (paper IV-C: 0.1-2.0)
lsj_ratio_range = None

# --- values with a default ---
backend_args = None
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction', 'modalities', 'modality_channels')

# --- built from the values ---
train_pipeline = [
    dict(type='LoadMultiModalImages', modalities=modalities, order=list(modalities),
         backend_args=backend_args),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='VoidNodata'),  # targets void where a modality is `nodata` (no-op without)
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
    dict(type='LoadMultiModalImages', modalities=modalities, order=list(modalities),
         backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True,
         backend_args=backend_args),
    dict(type='VoidNodata'),  # targets void where a modality is `nodata` (no-op without)
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'modalities',
                    'modality_channels', 'modality_paths', 'nodata_mask')),
]

# the folders of split S are <modality>/S/ (images) and annotations/panoptic_S{.json,/}
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
        modalities={},  # {name: '<name>/train/' for name in modalities}
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
        modalities={},  # {name: '<name>/val/' for name in modalities}
        modality_suffixes=modality_suffixes,
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# all nine metrics in one loop with the package's fixed metrics; the annotation paths are
# relative to data_root here (a dataset base prefixes them)
val_evaluator = [
    dict(_base_.val_evaluator[0], ann_file='annotations/panoptic_val.json',
         seg_prefix='annotations/panoptic_val/', backend_args=backend_args),
    dict(_base_.val_evaluator[1], ann_file='annotations/instances_val.json',
         backend_args=backend_args),
    _base_.val_evaluator[2],
]
test_evaluator = val_evaluator

# the dataset's part of the model; a top-level config merges it: model = dict(
# _base_.dataset_model, ...). PMTSeg adds backbone in_channels=modality_channels and the head's
# class_names; early fusion adds backbone in_channels=(sum(modality_channels), ).
dataset_model = dict(
    data_preprocessor=dict(
        modality_channels=modality_channels,
        mean=modality_mean,
        std=modality_std,
        batch_augments=[
            dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
                 mask_pad_value=0, pad_seg=True, seg_pad_value=255)
        ]),
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=None)),  # [1.0] * num_classes + [0.1] (no-object class)
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes))
