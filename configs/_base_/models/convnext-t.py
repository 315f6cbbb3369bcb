# ConvNeXt-T (mmpretrain's ConvNeXt, mmdet's ConvNeXt-T settings) as a DualBackbone group:
# per-level channels 96/192/384/768, strides 4-32. mmpretrain imports torchvision:
# `PMTSEG_TORCHVISION=1 bash tools/install.sh` (docs/install.md). The weights are mmpretrain's
# ImageNet-1k release; DualBackbone adapts the stem of a group that is not 3-channel RGB.
convnext_t = dict(
    type='mmpretrain.ConvNeXt',
    arch='tiny',
    out_indices=[0, 1, 2, 3],
    drop_path_rate=0.4,
    layer_scale_init_value=1.0,
    gap_before_final_norm=False,
    init_cfg=dict(
        type='Pretrained',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/convnext/downstream/'
        'convnext-tiny_3rdparty_32xb128-noema_in1k_20220301-795e9634.pth',
        prefix='backbone.'))
convnext_t_channels = [96, 192, 384, 768]
