# The CPU-sized parts shared by the tiny PMTSeg and the tiny Mask2Former-EF: ResNet-18 from
# scratch, 64-d features, 1 pixel-decoder layer, 3 decoder layers, 50 queries. Twin of
# configs/_base_/models/tiny_r18.py; each tiny model base merges these into its neck/head.
from mmdet.models.backbones import ResNet

r18 = dict(type=ResNet, depth=18, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
           norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch',
           init_cfg=None)
tiny_pixel_decoder = dict(
    norm_cfg=dict(type='GN', num_groups=16),
    encoder=dict(
        num_layers=1,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=64, num_heads=4),
            ffn_cfg=dict(embed_dims=64, feedforward_channels=256))),
    positional_encoding=dict(num_feats=32))
tiny_head = dict(
    feat_channels=64,
    out_channels=64,
    num_queries=50,
    positional_encoding=dict(num_feats=32),
    transformer_decoder=dict(
        num_layers=3,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=64, num_heads=4),
            cross_attn_cfg=dict(embed_dims=64, num_heads=4),
            ffn_cfg=dict(embed_dims=64, feedforward_channels=256))))
