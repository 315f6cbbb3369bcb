# PMTSeg with one Swin-T per modality (mmdet's SwinTransformer): pmtseg_r50.py with the backbones
# and the neck's per-modality input channels replaced.
_base_ = ['./pmtseg_r50.py', './swin-t.py']
model = dict(
    backbone=dict(backbones=[_base_.swin_t, _base_.swin_t]),
    neck=dict(in_channels=[_base_.swin_t_channels, _base_.swin_t_channels]))
