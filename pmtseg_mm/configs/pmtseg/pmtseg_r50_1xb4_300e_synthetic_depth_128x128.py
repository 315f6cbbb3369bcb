# PMTSeg, two ResNet-50, synthetic optical + depth, paper schedule (300 epochs of 400 images at
# batch 4 = 30000 iterations). Python-style twin of
# configs/pmtseg/pmtseg_r50_1xb4-300e_synthetic-depth-128x128.py.
from mmdet.models.data_preprocessors import BatchFixedSizePad
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_depth_128 import *  # noqa: F401,F403
    from .._base_.default_runtime import *  # noqa: F401,F403
    from .._base_.models.pmtseg_r50 import *  # noqa: F401,F403
    from .._base_.schedules.adamw_iter import *  # noqa: F401,F403

class_names = ('building', 'tree', 'car', 'road', 'grass', 'water')
num_things_classes = 3
num_stuff_classes = 3
model.merge(
    dict(
        data_preprocessor=dict(
            modality_channels=modality_channels,
            mean=modality_mean,
            std=modality_std,
            batch_augments=[
                dict(type=BatchFixedSizePad, size=image_size, img_pad_value=0, pad_mask=True,
                     mask_pad_value=0, pad_seg=True, seg_pad_value=255)
            ]),
        backbone=dict(in_channels=modality_channels),
        panoptic_head=dict(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            class_names=class_names,
            loss_cls=dict(class_weight=[1.0] * (num_things_classes + num_stuff_classes) + [0.1])),
        panoptic_fusion_head=dict(
            num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes)))

max_iters = 30000
val_interval = 3000
param_scheduler.merge(dict(end=max_iters, milestones=[int(max_iters * 0.89),
                                                       int(max_iters * 0.96)]))
train_cfg.merge(dict(max_iters=max_iters, val_interval=val_interval))
default_hooks.merge(
    dict(checkpoint=dict(by_epoch=False, save_last=True, max_keep_ckpts=3, interval=val_interval),
         logger=dict(interval=50)))
log_processor.merge(dict(by_epoch=False))
