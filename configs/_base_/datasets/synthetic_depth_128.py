# Embedded synthetic optical + depth dataset (tools/dataset_converters/synthetic.py), 128x128.
# Generate it with:
#   python tools/dataset_converters/synthetic.py --out data/synthetic_depth --num-train 400 \
#       --num-val 100 --size 128 --aux depth --seed 0
_base_ = ['./multimodal_pipeline.py']
dataset_type = 'SyntheticRSDataset'
data_root = 'data/synthetic_depth/'
aux_modality = 'depth'
image_size = (128, 128)
num_things_classes = 3
num_stuff_classes = 3
num_classes = num_things_classes + num_stuff_classes
class_names = ('building', 'tree', 'car', 'road', 'grass', 'water')  # = SYNTHETIC_METAINFO

# channel order of the stacked image: optical (BGR, as decoded) then depth (metres)
# the stored dtypes the statistics below are for: other data stop with one error that names
# the file and the remedies (LoadMultiModalImages `dtype`, `rescale`)
modalities = {'optical': dict(channels=3, dtype='uint8'),
              aux_modality: dict(channels=1, dtype='float32')}
modality_suffixes = {'optical': '.png', aux_modality: '.tif'}
# per-modality statistics: optical RGB as in mmdet (ImageNet); depth from
# data/synthetic_depth/modality_stats.json (400 train images, seed 0)
modality_channels = (3, 1)
modality_mean = [[123.675, 116.28, 103.53], [1.0171]]
modality_std = [[58.395, 57.12, 57.375], [3.0499]]
# milder scale jitter than the paper's 0.1-2.0 (kept by the real-dataset configs): at 0.1x the
# synthetic things (16-32 px buildings, 10-24 px trees, 6x12 px cars at 128 px) shrink below one
# mask-feature cell (1/4 resolution) and vanish from the crop.
lsj_ratio_range = (0.5, 1.5)

# --- the shared data section (multimodal_pipeline.py) filled with the values above ---
pipeline_values = dict(modalities=modalities, order=list(modalities), scale=image_size,
                       crop_size=image_size, ratio_range=lsj_ratio_range)
train_pipeline = [dict(t, **{k: v for k, v in pipeline_values.items() if k in t})
                  for t in _base_.train_pipeline]
test_pipeline = [dict(t, **{k: v for k, v in pipeline_values.items() if k in t})
                 for t in _base_.test_pipeline]
dataset_values = dict(type=dataset_type, data_root=data_root, modality_suffixes=modality_suffixes)
train_dataloader = dict(dataset=dict(dataset_values, pipeline=train_pipeline,
                                     modalities={m: f'{m}/train/' for m in modalities}))
val_dataloader = dict(dataset=dict(dataset_values, pipeline=test_pipeline,
                                   modalities={m: f'{m}/val/' for m in modalities}))
test_dataloader = val_dataloader
val_evaluator = [dict(e, **{k: data_root + e[k] for k in ('ann_file', 'seg_prefix') if k in e})
                 for e in _base_.val_evaluator]
test_evaluator = val_evaluator
dataset_model = dict(
    data_preprocessor=dict(
        modality_channels=modality_channels, mean=modality_mean, std=modality_std,
        batch_augments=[dict(_base_.dataset_model.data_preprocessor.batch_augments[0],
                             size=image_size)]),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes,
                       loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes))
