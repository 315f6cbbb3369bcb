# Table VIII "NIR" (here the auxiliary modality, depth): PMTSeg trained and tested on depth alone -
# one backbone, TMSF passes its pixel-decoder output through, L_TMAA is 0, PSH unchanged. No
# photometric augmentation (the base applies it to optical only).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
modalities = dict(depth=dict(channels=1))
model = dict(
    data_preprocessor=dict(modality_channels=(1, ), mean=[_base_.modality_mean[1]],
                           std=[_base_.modality_std[1]], bgr_to_rgb=False),
    backbone=dict(in_channels=(1, ), backbones=[{{_base_.r18}}]),
    neck=dict(num_modalities=1, in_channels=[[64, 128, 256, 512]]))
# the base's pipelines loading depth only, without the optical photometric augmentation
train_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                  else t for t in _base_.train_pipeline if t.type != 'ModalityTransform']
test_pipeline = [dict(t, modalities=modalities, order=list(modalities)) if 'modalities' in t
                 else t for t in _base_.test_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
