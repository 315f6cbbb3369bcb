# CPU-sized optical-only Mask2Former (ResNet-18 from scratch, 64-d): 1000 iterations.
_base_ = [
    '../_base_/models/mask2former-ef_r18-tiny.py', '../_base_/datasets/synthetic_optical_128.py',
    '../_base_/schedules/adamw_1000it_tiny.py'
]
model = dict(_base_.dataset_model, backbone=dict(in_channels=(sum(_base_.modality_channels), )))
