# The synthetic optical + depth dataset as mmseg semantic data (MultiModalSegDataset), 128x128.
# Generate it, then write the semantic label PNGs from its panoptic annotation:
#   python tools/dataset_converters/synthetic.py --out data/synthetic_depth --aux depth ...
#   python tools/dataset_converters/panoptic_to_semantic.py --data-root data/synthetic_depth
# Every name here starts with `seg_` so that this file can sit in `_base_` beside a stock mmseg
# config (bases may not share a key); the top-level configs take what they need with
# `dict(_delete_=True, **_base_.seg_...)`.
seg_data_root = 'data/synthetic_depth/'
seg_classes = ('building', 'tree', 'car', 'road', 'grass', 'water')  # label order of the PNGs
seg_crop_size = (128, 128)
# channel order of the stacked image: optical (BGR, as decoded) then depth (metres)
seg_modalities = dict(optical=dict(channels=3, dtype='uint8'),
                      depth=dict(channels=1, dtype='float32'))
seg_data_preprocessor = dict(
    type='MultiModalDataPreprocessor',
    modality_channels=(3, 1),
    # = configs/_base_/datasets/synthetic_depth_128.py (tests/test_interop/test_mmseg.py checks)
    mean=[[123.675, 116.28, 103.53], [1.0171]],
    std=[[58.395, 57.12, 57.375], [3.0499]],
    bgr_to_rgb=True,
    pad_size_divisor=32,
    pad_mask=False,
    pad_seg=False)  # the pipeline pads labels to the crop (Pad below)
seg_train_pipeline = [
    dict(type='LoadMultiModalImages', modalities=seg_modalities, order=list(seg_modalities)),
    dict(type='LoadAnnotations'),
    dict(type='ModalityTransform', modality='optical',
         transforms=[dict(type='PhotoMetricDistortion')]),
    dict(type='RandomResize', scale=seg_crop_size, ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=seg_crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Pad', size=seg_crop_size, pad_val=dict(img=0, seg=255)),
    dict(type='PackSegInputs'),
]
seg_test_pipeline = [
    dict(type='LoadMultiModalImages', modalities=seg_modalities, order=list(seg_modalities)),
    dict(type='Resize', scale=seg_crop_size, keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]


def _seg_dataset(split, pipeline):  # noqa: E302  (a helper; not a config key)
    return dict(
        type='MultiModalSegDataset',
        data_root=seg_data_root,
        data_prefix=dict(img_path=f'optical/{split}', seg_map_path=f'annotations/semantic_{split}'),
        img_suffix='.png',
        seg_map_suffix='.png',
        modalities=dict(optical=f'optical/{split}', depth=f'depth/{split}'),
        modality_suffixes=dict(optical='.png', depth='.tif'),
        metainfo=dict(classes=seg_classes),
        pipeline=pipeline)


seg_train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=_seg_dataset('train', seg_train_pipeline))
seg_val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=_seg_dataset('val', seg_test_pipeline))
seg_val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
