# SemCity Toulouse, optical + NIR, 128x128 patches (train 1404, val = the paper's test split,
# 1404); the same values as configs/_base_/datasets/semcity_toulouse_128.py. The synthetic
# dataset's pipelines and loaders with this dataset's values.
from mmengine.config import read_base

from pmtseg_mm.datasets import SemCityToulouseDataset

with read_base():
    from .synthetic_depth_128 import *  # noqa: F401,F403

dataset_type = SemCityToulouseDataset
data_root = 'data/semcity_toulouse/'
aux_modality = 'nir'
class_names = ('building', 'impervious surface', 'pervious surface', 'high vegetation', 'car',
               'water', 'sport venues')
modalities = {'optical': dict(channels=3), aux_modality: dict(channels=1)}
# placeholders (ImageNet RGB; mid-range NIR): paste yours from modality_stats.json
modality_mean = [[123.675, 116.28, 103.53], [127.5]]
modality_std = [[58.395, 57.12, 57.375], [64.0]]
modality_suffixes = {'optical': '.png', aux_modality: '.png'}
lsj_ratio_range = (0.1, 2.0)  # paper IV-C

train_pipeline = [dict(train_pipeline[0], modalities=modalities), *train_pipeline[1:4],
                  dict(train_pipeline[4], ratio_range=lsj_ratio_range), *train_pipeline[5:]]
test_pipeline = [dict(test_pipeline[0], modalities=modalities), *test_pipeline[1:3],
                 dict(test_pipeline[3], meta_keys=test_pipeline[3]['meta_keys'][:-1])]
train_dataloader = dict(
    train_dataloader,
    dataset=dict(train_dataloader['dataset'], type=dataset_type, data_root=data_root,
                 modalities=dict(optical='optical/train/', nir='nir/train/'),
                 modality_suffixes=modality_suffixes, pipeline=train_pipeline))
val_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], type=dataset_type, data_root=data_root,
                 modalities=dict(optical='optical/val/', nir='nir/val/'),
                 modality_suffixes=modality_suffixes, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(panoptic_metric, ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/', backend_args=backend_args),
    dict(instance_metric, ann_file=data_root + 'annotations/instances_val.json',
         backend_args=backend_args),
    semantic_metric,
]
test_evaluator = val_evaluator
