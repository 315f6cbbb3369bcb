# SemCity Toulouse, optical + NIR, 128x128 patches (train 1404, val = the paper's test split,
# 1404). Twin of configs/_base_/datasets/semcity_toulouse_128.py (same values; comments there).
from mmengine.config import read_base

from pmtseg_mm.datasets import SemCityToulouseDataset

with read_base():
    from .multimodal_pipeline import *  # noqa: F401,F403

dataset_type = SemCityToulouseDataset
data_root = 'data/semcity_toulouse/'
aux_modality = 'nir'
image_size = (128, 128)
num_things_classes = 1
num_stuff_classes = 6
num_classes = num_things_classes + num_stuff_classes
class_names = ('building', 'impervious surface', 'pervious surface', 'high vegetation', 'car',
               'water', 'sport venues')
# the stored dtypes the statistics below are for: other data stop with one error that names
# the file and the remedies (LoadMultiModalImages `dtype`, `rescale`)
modalities = {'optical': dict(channels=3, dtype='uint8'),
              aux_modality: dict(channels=1, dtype='uint8')}
modality_suffixes = {'optical': '.png', aux_modality: '.png'}
modality_channels = (3, 1)
# placeholders (ImageNet RGB; mid-range NIR): paste yours from modality_stats.json
modality_mean = [[123.675, 116.28, 103.53], [127.5]]
modality_std = [[58.395, 57.12, 57.375], [64.0]]
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
test_dataloader = val_dataloader
val_evaluator = [dict(e, **{k: data_root + e[k] for k in ('ann_file', 'seg_prefix') if k in e})
                 for e in val_evaluator]
test_evaluator = val_evaluator
dataset_model = dict(
    data_preprocessor=dict(
        modality_channels=modality_channels, mean=modality_mean, std=modality_std,
        batch_augments=[dict(dataset_model['data_preprocessor']['batch_augments'][0],
                             size=image_size)]),
    panoptic_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes,
                       loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes,
                              num_stuff_classes=num_stuff_classes))
