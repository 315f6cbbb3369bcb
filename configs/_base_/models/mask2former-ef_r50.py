# Mask2Former (mmdet, R50, panoptic) with early fusion: all modalities stacked as input channels.
# DualBackbone(fusion='early') with one channel group = a plain ResNet whose first conv takes ΣC channels, with
# the torchvision RGB weights adapted to ΣC channels instead of dropped.
# Top-level configs merge the dataset base's `dataset_model` (class counts, preprocessor
# statistics) and set `in_channels` = (sum of the modality channels, ).
_base_ = ['./mask2former_head.py', './multimodal_data_preprocessor.py']
model = dict(
    type='Mask2Former',
    data_preprocessor=_base_.multimodal_data_preprocessor,
    backbone=dict(
        type='DualBackbone',
        in_channels=(4, ),
        fusion='early',  # one pyramid of the stacked modalities, for mmdet's pixel decoder
        backbones=[
            dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                 norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='pytorch',
                 init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))
        ]),
    panoptic_head=dict(
        _base_.mask2former_head,
        type='Mask2FormerHead',
        in_channels=[256, 512, 1024, 2048],
        strides=[4, 8, 16, 32],
        feat_channels=256,
        out_channels=256,
        pixel_decoder=_base_.pixel_decoder),
    panoptic_fusion_head=dict(_base_.mask2former_fusion_head, type='MaskFormerFusionHead'),
    train_cfg=_base_.mask2former_train_cfg,
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=False,
        instance_on=True,
        max_per_image=100,
        iou_thr=0.8,
        filter_low_score=True),
    init_cfg=None)
