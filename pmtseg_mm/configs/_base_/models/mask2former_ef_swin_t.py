# Mask2Former-EF with Swin-T (mmdet) on the stacked modalities. Twin of
# configs/_base_/models/mask2former-ef_swin-t.py.
from mmengine.config import read_base

with read_base():
    from .mask2former_ef_r50 import *  # noqa: F401,F403
    from .swin_t import *  # noqa: F401,F403

model.merge(
    dict(backbone=dict(backbones=[swin_t]), panoptic_head=dict(in_channels=swin_t_channels)))
