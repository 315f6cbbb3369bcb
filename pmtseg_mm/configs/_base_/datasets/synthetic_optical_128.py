# The synthetic dataset with the optical modality only (for the optical-only baseline). Twin of
# configs/_base_/datasets/synthetic_optical_128.py: the depth folders stay in the dataset; only
# the optical modality is loaded.
from mmengine.config import read_base

with read_base():
    from .synthetic_depth_128 import *  # noqa: F401,F403

modalities = dict(optical=dict(channels=3, dtype='uint8'))
modality_channels = (3, )
modality_mean = [[123.675, 116.28, 103.53]]
modality_std = [[58.395, 57.12, 57.375]]

pipeline_values = dict(pipeline_values, modalities=modalities, order=list(modalities))
train_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                  else t for t in train_pipeline]
test_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                 else t for t in test_pipeline]
train_dataloader = dict(train_dataloader,
                        dataset=dict(train_dataloader['dataset'], pipeline=train_pipeline))
val_dataloader = dict(val_dataloader,
                      dataset=dict(val_dataloader['dataset'], pipeline=test_pipeline))
test_dataloader = val_dataloader
dataset_model = dict(
    dataset_model,
    data_preprocessor=dict(dataset_model['data_preprocessor'], modality_channels=modality_channels,
                           mean=modality_mean, std=modality_std))
