# ConvNeXt-T (mmpretrain's ConvNeXt, mmdet's ConvNeXt-T settings) as a DualBackbone group:
# per-level channels 96/192/384/768; mmpretrain imports torchvision (docs/install.md).
# Twin of configs/_base_/models/convnext-t.py.
from mmpretrain.models import ConvNeXt

convnext_t = dict(
    type=ConvNeXt,
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
