# PMTSeg with one ConvNeXt-T (mmpretrain) per modality. Twin of
# configs/_base_/models/pmtseg_convnext-t.py.
from mmengine.config import read_base

with read_base():
    from .pmtseg_r50 import *  # noqa: F401,F403
    from .convnext_t import *  # noqa: F401,F403

model.merge(
    dict(
        backbone=dict(backbones=[convnext_t, convnext_t]),
        neck=dict(in_channels=[convnext_t_channels, convnext_t_channels])))
