# CPU-sized Mask2Former-EF: ResNet-18, 64-d features, 1 pixel-decoder layer, 3 decoder layers,
# 50 queries. Twin of configs/_base_/models/mask2former-ef_r18-tiny.py.
from mmengine.config import read_base

with read_base():
    from .mask2former_ef_r50 import *  # noqa: F401,F403
    from .tiny_r18 import *  # noqa: F401,F403

model.merge(
    dict(
        backbone=dict(backbones=[r18]),
        panoptic_head=dict(tiny_head, in_channels=[64, 128, 256, 512],
                           pixel_decoder=tiny_pixel_decoder),
        train_cfg=dict(num_points=3136),
        test_cfg=dict(max_per_image=50)))
