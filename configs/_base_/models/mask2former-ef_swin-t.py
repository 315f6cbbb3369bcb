# Mask2Former-EF with Swin-T (mmdet's SwinTransformer) on the stacked modalities: the patch
# embedding keeps the pretrained RGB filters for the optical bands and adapts the others.
_base_ = ['./mask2former-ef_r50.py', './swin-t.py']
model = dict(
    backbone=dict(backbones=[_base_.swin_t]),
    panoptic_head=dict(in_channels=_base_.swin_t_channels))
