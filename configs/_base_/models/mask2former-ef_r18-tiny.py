# CPU-sized Mask2Former-EF: ResNet-18, 64-d features, 1 pixel-decoder layer, 3 decoder layers,
# 50 queries. Trains from scratch (no download needed) in minutes at 128x128 on 2 cores.
_base_ = ['./mask2former-ef_r50.py', './tiny_r18.py']
model = dict(
    backbone=dict(backbones=[_base_.r18]),
    panoptic_head=dict(_base_.tiny_head, in_channels=[64, 128, 256, 512],
                       pixel_decoder=_base_.tiny_pixel_decoder),
    train_cfg=dict(num_points=3136),
    test_cfg=dict(max_per_image=50))
