# PMTSeg, two ResNet-50 (optical + NIR), on SemCity Toulouse; 300 epochs at batch 4 =
# ceil(1404 / 4) x 300 = 105300 iterations. Python-style twin of
# configs/pmtseg/pmtseg_r50_1xb4-300e_semcity-toulouse-128x128.py: the synthetic config with
# this dataset's data, classes and schedule.
from mmengine.config import read_base

with read_base():
    from .pmtseg_r50_1xb4_300e_synthetic_depth_128x128 import *  # noqa: F401,F403
    from .._base_.datasets.semcity_toulouse_128 import *  # noqa: F401,F403

num_things_classes = 1
num_stuff_classes = 6
model.merge(
    dict(
        data_preprocessor=dict(mean=modality_mean, std=modality_std),
        panoptic_head=dict(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            class_names=class_names,
            loss_cls=dict(class_weight=[1.0] * (num_things_classes + num_stuff_classes) + [0.1])),
        panoptic_fusion_head=dict(
            num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes)))

max_iters = 105300
val_interval = 3510  # every 10 epochs
param_scheduler.merge(dict(end=max_iters, milestones=[int(max_iters * 0.89),
                                                       int(max_iters * 0.96)]))
train_cfg.merge(dict(max_iters=max_iters, val_interval=val_interval))
default_hooks.merge(dict(checkpoint=dict(interval=val_interval)))
