# PMTSeg with one ConvNeXt-T per modality (mmpretrain's ConvNeXt, needs torchvision):
# pmtseg_r50.py with the backbones and the neck's per-modality input channels replaced.
_base_ = ['./pmtseg_r50.py', './convnext-t.py']
model = dict(
    backbone=dict(backbones=[_base_.convnext_t, _base_.convnext_t]),
    neck=dict(in_channels=[_base_.convnext_t_channels, _base_.convnext_t_channels]))
