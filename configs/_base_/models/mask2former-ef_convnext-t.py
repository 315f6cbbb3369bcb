# Mask2Former-EF with ConvNeXt-T (mmpretrain's ConvNeXt, needs torchvision) on the stacked
# modalities: the stem keeps the pretrained RGB filters for the optical bands, adapts the others.
_base_ = ['./mask2former-ef_r50.py', './convnext-t.py']
model = dict(
    backbone=dict(backbones=[_base_.convnext_t]),
    panoptic_head=dict(in_channels=_base_.convnext_t_channels))
