# PMTSeg, two ConvNeXt-T (mmpretrain: needs torchvision, docs/install.md), paper settings
# (AdamW 1e-4, wd 0.05, LSJ 0.1-2.0, batch 4): 300 epochs of the 400-image synthetic train
# split = 30000 iterations.
_base_ = [
    '../_base_/models/pmtseg_convnext-t.py', '../_base_/datasets/synthetic_depth_128.py',
    '../_base_/schedules/adamw_iter.py'
]
model = dict(_base_.dataset_model, backbone=dict(in_channels=_base_.modality_channels),
             panoptic_head=dict(_base_.dataset_model.panoptic_head, class_names=_base_.class_names))

max_iters = 30000
val_interval = 3000
param_scheduler = dict(end=max_iters, milestones=[int(max_iters * 0.89), int(max_iters * 0.96)])
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
