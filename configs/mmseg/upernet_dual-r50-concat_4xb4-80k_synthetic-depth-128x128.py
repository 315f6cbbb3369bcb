# mmseg UPerNet (stock config) on optical + depth: one ResNet-50-V1c per modality, the two
# pyramids concatenated per level and mapped back to [256, 512, 1024, 2048] by 1x1 convs
# (DualBackbone fusion='concat'), so the stock UPerHead/FCNHead fit unchanged; TMAA (paper
# eq. 2-6) as an auxiliary loss on the per-modality features.
_base_ = [
    'mmseg::upernet/upernet_r50_4xb4-80k_ade20k-512x512.py',
    './_base_/datasets/synthetic_depth_semantic_128.py'
]
custom_imports = dict(imports=['pmtseg_mm'], allow_failed_imports=False)

num_classes = len(_base_.seg_classes)
# the stock backbone, once per modality, each with its ImageNet weights (depth: first conv
# adapted from RGB by DualBackbone)
modality_backbone = dict(
    _base_.model.backbone,
    init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c'))
model = dict(
    type='MultiModalEncoderDecoder',
    pretrained=None,  # per-backbone init_cfg above
    data_preprocessor=dict(_delete_=True, **_base_.seg_data_preprocessor),
    backbone=dict(
        _delete_=True,
        type='DualBackbone',
        in_channels=(3, 1),
        backbones=[modality_backbone, modality_backbone],
        fusion='concat'),
    decode_head=dict(num_classes=num_classes),
    auxiliary_head=dict(num_classes=num_classes),
    tmaa_loss=dict(type='TMAALoss', mode='js', tau=0.1, levels=(0, 1, 2, 3), max_points=1024,
                   loss_weight=1.0))

train_dataloader = dict(_delete_=True, **_base_.seg_train_dataloader)
val_dataloader = dict(_delete_=True, **_base_.seg_val_dataloader)
test_dataloader = val_dataloader
val_evaluator = _base_.seg_val_evaluator
test_evaluator = val_evaluator
train_pipeline = _base_.seg_train_pipeline  # (the stock ADE20K pipelines are not used)
test_pipeline = _base_.seg_test_pipeline
crop_size = _base_.seg_crop_size
dataset_type = 'MultiModalSegDataset'
data_root = _base_.seg_data_root
data_preprocessor = _base_.seg_data_preprocessor
