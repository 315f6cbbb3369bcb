# Mask2Former-EF with ConvNeXt-T (mmpretrain) on the stacked modalities. Twin of
# configs/_base_/models/mask2former-ef_convnext-t.py.
from mmengine.config import read_base

with read_base():
    from .mask2former_ef_r50 import *  # noqa: F401,F403
    from .convnext_t import *  # noqa: F401,F403

model.merge(
    dict(backbone=dict(backbones=[convnext_t]),
         panoptic_head=dict(in_channels=convnext_t_channels)))
