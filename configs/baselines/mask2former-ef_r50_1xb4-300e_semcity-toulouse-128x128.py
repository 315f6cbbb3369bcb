# Mask2Former-EF (early fusion, optical + NIR as 4 input channels), R50, on SemCity Toulouse.
# Paper IV-C schedule: 300 epochs at batch 4 = ceil(1404 / 4) x 300 = 105300 iterations.
_base_ = [
    '../_base_/models/mask2former-ef_r50.py', '../_base_/datasets/semcity_toulouse_128.py',
    '../_base_/schedules/adamw_iter.py'
]
model = dict(_base_.dataset_model, backbone=dict(in_channels=(sum(_base_.modality_channels), )))

max_iters = 105300
val_interval = 3510  # every 10 epochs
param_scheduler = dict(end=max_iters, milestones=[int(max_iters * 0.89), int(max_iters * 0.96)])
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
