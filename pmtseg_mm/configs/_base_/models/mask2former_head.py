# The Mask2Former pixel decoder, transformer decoder, losses and matcher (mmdet's R50 panoptic
# recipe; paper IV-C: cls 2 / BCE 5 / dice 5), written once for the PMTSeg PSH head and the
# Mask2Former-EF baseline. Twin of configs/_base_/models/mask2former_head.py; the class counts and
# class weights are placeholders that the dataset base's `dataset_model` sets.
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
mask2former_head = dict(
    num_things_classes=3,
    num_stuff_classes=3,
    num_queries=100,
    num_transformer_feat_level=3,
    enforce_decoder_input_project=False,
    positional_encoding=dict(num_feats=128, normalize=True),
    transformer_decoder=dict(
        return_intermediate=True,
        num_layers=9,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
            cross_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.0, batch_first=True),
            ffn_cfg=dict(embed_dims=256, feedforward_channels=2048, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True))),
        init_cfg=None),
    loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=2.0, reduction='mean',
                  class_weight=[1.0] * 6 + [0.1]),
    loss_mask=dict(type=CrossEntropyLoss, use_sigmoid=True, reduction='mean', loss_weight=5.0),
    loss_dice=dict(type=DiceLoss, use_sigmoid=True, activate=True, reduction='mean',
                   naive_dice=True, eps=1.0, loss_weight=5.0))
mask2former_fusion_head = dict(
    num_things_classes=3,
    num_stuff_classes=3,
    loss_panoptic=None,
    init_cfg=None)
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
