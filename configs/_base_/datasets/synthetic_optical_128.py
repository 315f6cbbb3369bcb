# The synthetic dataset with the optical modality only (for the optical-only baseline). The depth
# folders stay in the dataset; only the optical modality is loaded.
_base_ = './synthetic_depth_128.py'
modalities = dict(optical=dict(channels=3, dtype='uint8'))
modality_channels = (3, )
modality_mean = [[123.675, 116.28, 103.53]]
modality_std = [[58.395, 57.12, 57.375]]

pipeline_values = dict(_base_.pipeline_values, modalities=modalities, order=list(modalities))
train_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                  else t for t in _base_.train_pipeline]
test_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                 else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
dataset_model = dict(
    data_preprocessor=dict(modality_channels=modality_channels, mean=modality_mean,
                           std=modality_std))
