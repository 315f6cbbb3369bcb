# VALID virtual aerial, optical + depth, resized 1024 -> 512; train 3345, val 1115, test 2230
# (the paper reports the test split). Twin of configs/_base_/datasets/valid_512.py (same values;
# comments there).
from mmengine.config import read_base

from pmtseg_mm.datasets import VALIDDataset

with read_base():
    from .multimodal_pipeline import *  # noqa: F401,F403

dataset_type = VALIDDataset
data_root = 'data/valid/'
aux_modality = 'depth'
image_size = (512, 512)
num_things_classes = 17
num_stuff_classes = 13
num_classes = num_things_classes + num_stuff_classes
class_names = ('tree', 'sign', 'small vehicle', 'large vehicle', 'building', 'animal', 'person',
               'chair', 'garbage bin', 'low obstacle', 'telegraph pole', 'traffic light', 'bus stop',
               'lamp', 'high obstacle', 'ship', 'plane', 'plant', 'road', 'pavement', 'land',
               'water', 'pool', 'ice', 'stone', 'pier rubble', 'bridge', 'fence', 'tunnel',
               'harbor')
# the stored dtypes the statistics below are for: other data stop with one error that names
# the file and the remedies (LoadMultiModalImages `dtype`, `rescale`)
modalities = {'optical': dict(channels=3, dtype='uint8'),
              aux_modality: dict(channels=1, dtype='float32')}
modality_suffixes = {'optical': '.png', aux_modality: '.tif'}
modality_channels = (3, 1)
# placeholders (ImageNet RGB; depth around the 20/50/100 m flight altitudes): paste yours from
# modality_stats.json
modality_mean = [[123.675, 116.28, 103.53], [60.0]]
modality_std = [[58.395, 57.12, 57.375], [35.0]]
lsj_ratio_range = (0.1, 2.0)  # paper IV-C

# --- the shared data section (multimodal_pipeline.py) rebuilt with the values above ---
pipeline_values = dict(modalities=modalities, order=list(modalities), scale=image_size,
                       crop_size=image_size, ratio_range=lsj_ratio_range)
train_pipeline = [dict(t, **{k: v for k, v in pipeline_values.items() if k in t})
                  for t in train_pipeline]
test_pipeline = [dict(t, **{k: v for k, v in pipeline_values.items() if k in t})
                 for t in test_pipeline]
dataset_values = dict(type=dataset_type, data_root=data_root, modality_suffixes=modality_suffixes)
train_dataloader = dict(
    train_dataloader,
    dataset=dict(train_dataloader['dataset'], **dataset_values, pipeline=train_pipeline,
                 modalities={m: f'{m}/train/' for m in modalities}))
val_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], **dataset_values, pipeline=test_pipeline,
                 modalities={m: f'{m}/val/' for m in modalities}))
# the paper reports VALID's test split
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], ann_file='annotations/panoptic_test.json',
                 data_prefix=dict(img='optical/test/', seg='annotations/panoptic_test/'),
                 modalities={m: f'{m}/test/' for m in modalities}))
test_evaluator = [
    dict(e, **{k: data_root + e[k].replace('_val', '_test') for k in ('ann_file', 'seg_prefix')
               if k in e}) for e in val_evaluator]
val_evaluator = [dict(e, **{k: data_root + e[k] for k in ('ann_file', 'seg_prefix') if k in e})
                 for e in val_evaluator]
dataset_model = dict(
    data_preprocessor=dict(
        modality_channels=modality_channels, mean=modality_mean, std=modality_std,
        batch_augments=[dict(dataset_model['data_preprocessor']['batch_augments'][0],
                             size=image_size)]),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes,
                       loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes))
