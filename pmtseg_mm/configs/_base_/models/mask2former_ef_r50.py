# Mask2Former (mmdet, R50, panoptic) with early fusion: all modalities stacked as input channels
# (DualBackbone with one channel group; the torchvision RGB weights adapted to the channel count).
from mmengine.config import read_base
from mmdet.models.backbones import ResNet
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.models.detectors import Mask2Former
from mmdet.models.seg_heads import MaskFormerFusionHead

from pmtseg_mm.models.backbones import DualBackbone
from pmtseg_mm.models.data_preprocessors import MultiModalDataPreprocessor

with read_base():
    from .mask2former_head import *  # noqa: F401,F403

model = dict(
    type=Mask2Former,
    data_preprocessor=dict(
        type=MultiModalDataPreprocessor,
        modality_channels=(3, 1),
        mean=[[123.675, 116.28, 103.53], [0.0]],
        std=[[58.395, 57.12, 57.375], [1.0]],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type=DualBackbone,
        in_channels=(4, ),
        backbones=[
            dict(type=ResNet, depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                 norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='pytorch',
                 init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))
        ]),
    panoptic_head=dict(
        type=Mask2FormerHead,
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        feat_channels=256,
        out_channels=256,
        num_queries=100,
        num_transformer_feat_level=3,
        pixel_decoder=pixel_decoder,
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=128, normalize=True),
        transformer_decoder=transformer_decoder,
        loss_cls=loss_cls,
        loss_mask=loss_mask,
        loss_dice=loss_dice),
    panoptic_fusion_head=dict(type=MaskFormerFusionHead, loss_panoptic=None, init_cfg=None),
    train_cfg=mask2former_train_cfg,
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=True,
        max_per_image=100,
        iou_thr=0.8,
        filter_low_score=True),
    init_cfg=None)
