"""Small model parts shared by the model tests (not a test module)."""


def pixel_decoder(channels: int = 32, ffn_channels: int = 64, num_layers: int = 1,
                  **kwargs) -> dict:
    """mmdet ``MSDeformAttnPixelDecoder`` config: 3 levels, 4 heads, 2 points, GN(8)."""
    return dict(
        type='MSDeformAttnPixelDecoder',
        num_outs=3,
        norm_cfg=dict(type='GN', num_groups=8),
        act_cfg=dict(type='ReLU'),
        encoder=dict(
            num_layers=num_layers,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=channels, num_heads=4, num_levels=3, num_points=2,
                                   dropout=0.0, batch_first=True),
                ffn_cfg=dict(embed_dims=channels, feedforward_channels=ffn_channels, num_fcs=2,
                             ffn_drop=0.0, act_cfg=dict(type='ReLU', inplace=True)))),
        positional_encoding=dict(num_feats=channels // 2, normalize=True),
        **kwargs)
