# CPU-sized Mask2Former-EF: ResNet-18, 64-d features, 1 pixel-decoder layer, 3 decoder layers,
# 50 queries. Trains from scratch (no download needed) in minutes at 128x128 on 2 cores.
_base_ = './mask2former-ef_r50.py'
model = dict(
    backbone=dict(backbones=[
        dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
             norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch',
             init_cfg=None)
    ]),
    panoptic_head=dict(
        in_channels=[64, 128, 256, 512],
        feat_channels=64,
        out_channels=64,
        num_queries=50,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=16),
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=64, num_heads=4),
                    ffn_cfg=dict(embed_dims=64, feedforward_channels=256))),
            positional_encoding=dict(num_feats=32)),
        positional_encoding=dict(num_feats=32),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=64, num_heads=4),
                cross_attn_cfg=dict(embed_dims=64, num_heads=4),
                ffn_cfg=dict(embed_dims=64, feedforward_channels=256)))),
    train_cfg=dict(num_points=3136),
    test_cfg=dict(max_per_image=50))
