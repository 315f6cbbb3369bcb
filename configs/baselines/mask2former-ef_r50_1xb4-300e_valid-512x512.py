# Mask2Former-EF (early fusion, optical + depth as 4 input channels), R50, on VALID (512x512).
# Paper IV-C schedule: 300 epochs at batch 4 = ceil(3345 / 4) x 300 = 251100 iterations.
_base_ = [
    '../_base_/models/mask2former-ef_r50.py', '../_base_/datasets/valid_512.py',
    '../_base_/schedules/adamw_iter.py'
]
model = dict(_base_.dataset_model, backbone=dict(in_channels=(sum(_base_.modality_channels), )))

max_iters = 251100
val_interval = 8370  # every 10 epochs
param_scheduler = dict(end=max_iters, milestones=[int(max_iters * 0.89), int(max_iters * 0.96)])
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
