# PMTSeg (paper sec. III): two ResNet-50 (eq. 1) + TMAA (eq. 2-6, alpha = 5) + TMSF neck (eq. 7-10)
# + prompt-driven head PSH (eq. 11-15, beta = 0.5; cls 2 / BCE 5 / dice 5; 3 decoder layers).
# Top-level configs merge the dataset base's `dataset_model` (class counts, preprocessor
# statistics) and set the backbone's per-modality `in_channels` and the head's `class_names`.
_base_ = ['./mask2former_head.py', './multimodal_data_preprocessor.py']
r50 = dict(type='ResNet', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), frozen_stages=-1,
           norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True, style='pytorch',
           init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))
model = dict(
    type='PMTSeg',
    data_preprocessor=_base_.multimodal_data_preprocessor,
    backbone=dict(type='DualBackbone', in_channels=(3, 1), backbones=[r50, r50]),
    tmaa_loss=dict(type='TMAALoss', mode='js', tau=0.1, levels=(0, 1, 2, 3), max_points=1024,
                   loss_weight=5.0),
    neck=dict(
        type='TMSFNeck',
        in_channels=[[256, 512, 1024, 2048], [256, 512, 1024, 2048]],
        # 3 MSDeformAttn encoder layers per modality (Mask2Former: 6; the paper does not state
        # it): two pixel decoders are most of PMTSeg's cost over Mask2Former-EF
        # (docs/benchmarks.md, Efficiency)
        pixel_decoder=dict(_base_.pixel_decoder,
                           encoder=dict(_base_.pixel_decoder.encoder, num_layers=3)),
        num_modalities=2,
        out_channels=256,
        scales=(4, 8, 16, 32),
        num_layers=1,
        num_heads=8,
        ffn_channels=1024,
        max_kv_tokens=1024),
    panoptic_head=dict(
        _base_.mask2former_head,
        type='PSHHead',
        in_channels=[256, 256, 256, 256],
        feat_channels=256,
        out_channels=256,
        class_names=None,
        prompt_mode='psh',
        task_probs=dict(semantic=0.3, instance=0.3, panoptic=0.4),
        contrastive_tau=0.07,
        loss_con_weight=0.5,
        text_encoder=dict(type='TaskTextEncoder'),
        query_generator=dict(num_layers=2, num_heads=8, pool_size=16),
        label_encoder=dict(num_layers=2, num_heads=8),
        transformer_decoder=dict(_base_.mask2former_head.transformer_decoder, num_layers=3)),
    panoptic_fusion_head=dict(_base_.mask2former_fusion_head, type='MultiTaskFusionHead'),
    train_cfg=_base_.mask2former_train_cfg,
    test_cfg=dict(
        tasks=('semantic', 'instance', 'panoptic'),
        max_per_image=100,
        iou_thr=0.8,
        filter_low_score=True),
    init_cfg=None)
