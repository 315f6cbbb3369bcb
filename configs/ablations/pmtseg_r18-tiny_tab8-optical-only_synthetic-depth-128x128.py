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
# the base's pipelines loading the optical modality only
train_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                  else t for t in _base_.train_pipeline]
test_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                 else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
