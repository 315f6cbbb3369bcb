# CPU-sized PMTSeg: two ResNet-18 from scratch, 64-d features, 1 pixel-decoder layer, 3 decoder
# layers, 50 queries, a 2-layer text encoder. Twin of configs/_base_/models/pmtseg_r18-tiny.py.
from mmengine.config import read_base

from pmtseg_mm.models.layers import TaskTextEncoder

with read_base():
    from .pmtseg_r50 import *  # noqa: F401,F403
    from .tiny_r18 import *  # noqa: F401,F403

model.merge(
    dict(
        backbone=dict(backbones=[r18, r18]),
        tmaa_loss=dict(max_points=256),
        neck=dict(
            in_channels=[[64, 128, 256, 512], [64, 128, 256, 512]],
            pixel_decoder=tiny_pixel_decoder,
            out_channels=64,
            num_heads=4,
            ffn_channels=256,
            max_kv_tokens=256),
        panoptic_head=dict(
            tiny_head,
            in_channels=[64, 64, 64, 64],
            text_encoder=dict(type=TaskTextEncoder, embed_dims=64, num_layers=2, num_heads=4),
            query_generator=dict(num_layers=2, num_heads=4, pool_size=8),
            label_encoder=dict(num_layers=2, num_heads=4)),
        train_cfg=dict(num_points=3136),
        test_cfg=dict(max_per_image=50)))
