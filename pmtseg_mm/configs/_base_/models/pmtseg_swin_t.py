# PMTSeg with one Swin-T (mmdet) per modality. Twin of configs/_base_/models/pmtseg_swin-t.py.
from mmengine.config import read_base

with read_base():
    from .pmtseg_r50 import *  # noqa: F401,F403
    from .swin_t import *  # noqa: F401,F403

model.merge(
    dict(
        backbone=dict(backbones=[swin_t, swin_t]),
        neck=dict(in_channels=[swin_t_channels, swin_t_channels])))
