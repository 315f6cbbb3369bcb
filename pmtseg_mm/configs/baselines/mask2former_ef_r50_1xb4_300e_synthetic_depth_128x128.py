# Mask2Former-EF (optical + depth stacked as 4 input channels), R50, paper schedule (30000
# iterations). Python-style twin of
# configs/baselines/mask2former-ef_r50_1xb4-300e_synthetic-depth-128x128.py.
from mmengine.config import read_base

with read_base():
    from ..pmtseg.pmtseg_r50_1xb4_300e_synthetic_depth_128x128 import *  # noqa: F401,F403
    from .._base_.models.mask2former_ef_r50 import *  # noqa: F401,F403

# the PMTSeg config's data, schedule and class counts on the early-fusion model
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
        backbone=dict(in_channels=(sum(modality_channels), )),
        panoptic_head=dict(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            loss_cls=dict(class_weight=[1.0] * (num_things_classes + num_stuff_classes) + [0.1])),
        panoptic_fusion_head=dict(
            num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes)))
