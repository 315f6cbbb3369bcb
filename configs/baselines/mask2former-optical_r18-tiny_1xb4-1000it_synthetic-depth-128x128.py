# CPU-sized optical-only Mask2Former (ResNet-18 from scratch, 64-d): 1000 iterations.
_base_ = [
    '../_base_/models/mask2former-ef_r18-tiny.py', '../_base_/datasets/synthetic_optical_128.py',
    '../_base_/schedules/adamw_1000it_tiny.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['pmtseg_mm'], allow_failed_imports=False)

image_size = (128, 128)
num_things_classes = 3
num_stuff_classes = 3
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
    backbone=dict(in_channels=(3, )),
    panoptic_head=dict(
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(
        num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes))

val_interval = {{_base_.val_interval}}
default_hooks = dict(
    checkpoint=dict(by_epoch=False, save_last=True, max_keep_ckpts=3, interval=val_interval),
    logger=dict(interval=50))
log_processor = dict(by_epoch=False)
