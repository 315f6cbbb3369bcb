# The Mask2Former pixel decoder, transformer decoder, losses and matcher shared by PMTSeg's PSH
# head and the stock Mask2Former baseline (paper IV-C: cls 2 / BCE 5 / dice 5).
from mmdet.models.layers import MSDeformAttnPixelDecoder
from mmdet.models.losses import CrossEntropyLoss, DiceLoss
from mmdet.models.task_modules.assigners import (ClassificationCost, CrossEntropyLossCost,
                                                 DiceCost, HungarianAssigner)
from mmdet.models.task_modules.samplers import MaskPseudoSampler

pixel_decoder = dict(
    type=MSDeformAttnPixelDecoder,
    num_outs=3,
    norm_cfg=dict(type='GN', num_groups=32),
    act_cfg=dict(type='ReLU'),
    encoder=dict(
        num_layers=6,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=8, num_levels=3, num_points=4,
                               dropout=0.0, batch_first=True),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True)))),
    positional_encoding=dict(num_feats=128, normalize=True))

transformer_decoder = dict(  # Mask2Former's 9 layers; PMTSeg's PSH uses 3
    return_intermediate=True,
    num_layers=9,
    layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
        cross_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, num_fcs=2, ffn_drop=0.0,
                     act_cfg=dict(type='ReLU', inplace=True))),
    init_cfg=None)
# class_weight is set with the class count by the top-level configs
loss_cls = dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=2.0, reduction='mean')
loss_mask = dict(type=CrossEntropyLoss, use_sigmoid=True, reduction='mean', loss_weight=5.0)
loss_dice = dict(type=DiceLoss, use_sigmoid=True, activate=True, reduction='mean',
                 naive_dice=True, eps=1.0, loss_weight=5.0)
mask2former_train_cfg = dict(
    num_points=12544,
    oversample_ratio=3.0,
    importance_sample_ratio=0.75,
    assigner=dict(
        type=HungarianAssigner,
        match_costs=[
            dict(type=ClassificationCost, weight=2.0),
            dict(type=CrossEntropyLossCost, weight=5.0, use_sigmoid=True),
            dict(type=DiceCost, weight=5.0, pred_act=True, eps=1.0)
        ]),
    sampler=dict(type=MaskPseudoSampler))
