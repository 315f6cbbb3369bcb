# Mask2Former-EF (early fusion, optical + depth stacked as 4 input channels), ConvNeXt-T
# (mmpretrain: needs torchvision, docs/install.md), paper schedule: 300 epochs of the 400-image
# synthetic train split at batch 4 = 30000 iterations.
_base_ = [
    '../_base_/models/mask2former-ef_convnext-t.py', '../_base_/datasets/synthetic_depth_128.py',
    '../_base_/schedules/adamw_iter.py'
]
model = dict(_base_.dataset_model, backbone=dict(in_channels=(sum(_base_.modality_channels), )))

max_iters = 30000
val_interval = 3000
param_scheduler = dict(end=max_iters, milestones=[int(max_iters * 0.89), int(max_iters * 0.96)])
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
