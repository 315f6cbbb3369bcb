# CPU-sized variant of the mmseg UPerNet example: two ResNet-18 from scratch (no download), BN,
# 64-channel heads, 300 iterations at batch 4 (minutes on 2 cores).
_base_ = './upernet_dual-r50-concat_4xb4-80k_synthetic-depth-128x128.py'

norm_cfg = dict(type='BN', requires_grad=True)
r18 = dict(type='ResNetV1c', depth=18, num_stages=4, out_indices=(0, 1, 2, 3),
           dilations=(1, 1, 1, 1), strides=(1, 2, 2, 2), norm_cfg=norm_cfg, norm_eval=False,
           style='pytorch', contract_dilation=True, init_cfg=None)
model = dict(
    backbone=dict(backbones=[r18, r18]),
    decode_head=dict(in_channels=[64, 128, 256, 512], channels=64, norm_cfg=norm_cfg),
    auxiliary_head=dict(in_channels=256, channels=64, norm_cfg=norm_cfg),
    tmaa_loss=dict(max_points=256))

max_iters = 300
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=max_iters,
                        by_epoch=False)]
default_hooks = dict(logger=dict(interval=20),
                     checkpoint=dict(by_epoch=False, interval=max_iters))
