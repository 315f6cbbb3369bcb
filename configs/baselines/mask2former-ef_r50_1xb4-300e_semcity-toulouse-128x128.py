# Mask2Former-EF (early fusion, optical + NIR as 4 input channels), R50, on SemCity Toulouse.
# Paper IV-C schedule: 300 epochs at batch 4 = ceil(1404 / 4) x 300 = 105300 iterations.
_base_ = [
    '../_base_/models/mask2former-ef_r50.py', '../_base_/datasets/semcity_toulouse_128.py',
    '../_base_/schedules/adamw_iter.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['pmtseg_mm'], allow_failed_imports=False)

image_size = (128, 128)
num_things_classes = 1
num_stuff_classes = 6
num_classes = num_things_classes + num_stuff_classes
model = dict(
    data_preprocessor=dict(
        modality_channels={{_base_.modality_channels}},
        mean={{_base_.modality_mean}},
        std={{_base_.modality_std}},
        batch_augments=[
            dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True,
                 mask_pad_value=0, pad_seg=True, seg_pad_value=255)
        ]),
    backbone=dict(in_channels=(4, )),
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes))

max_iters = 105300
val_interval = 3510  # every 10 epochs
param_scheduler = dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
                       milestones=[int(max_iters * 0.89), int(max_iters * 0.96)], gamma=0.1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
