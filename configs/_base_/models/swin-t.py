# Swin-T (mmdet's SwinTransformer, Mask2Former's Swin-T settings) as a DualBackbone group:
# per-level channels 96/192/384/768, strides 4-32. The weights are the official ImageNet-1k
# release (convert_weights=True: mmdet's converter renames its keys); DualBackbone adapts the
# patch embedding of a group that is not 3-channel RGB (docs/architecture.md, Backbones).
swin_t = dict(
    type='SwinTransformer',
    embed_dims=96,
    depths=[2, 2, 6, 2],
    num_heads=[3, 6, 12, 24],
    window_size=7,
    mlp_ratio=4,
    qkv_bias=True,
    qk_scale=None,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.3,
    patch_norm=True,
    out_indices=(0, 1, 2, 3),
    with_cp=False,
    convert_weights=True,
    frozen_stages=-1,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://github.com/SwinTransformer/storage/releases/download/v1.0.0/'
        'swin_tiny_patch4_window7_224.pth'))
swin_t_channels = [96, 192, 384, 768]
