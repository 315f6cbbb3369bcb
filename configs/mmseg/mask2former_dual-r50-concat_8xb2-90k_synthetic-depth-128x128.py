# mmseg's Mask2Former (stock config) on optical + depth: one torchvision ResNet-50 per modality,
# fused per level by concatenation + 1x1 conv (DualBackbone fusion='concat') into the
# [256, 512, 1024, 2048] pyramid the stock head expects.
_base_ = [
    'mmseg::mask2former/mask2former_r50_8xb2-90k_cityscapes-512x1024.py',
    './_base_/datasets/synthetic_depth_semantic_128.py'
]
custom_imports = dict(imports=['pmtseg_mm'], allow_failed_imports=False)

num_classes = len(_base_.seg_classes)
modality_backbone = dict(_base_.model.backbone, deep_stem=False)
model = dict(
    data_preprocessor=dict(_delete_=True, **_base_.seg_data_preprocessor),
    backbone=dict(
        _delete_=True,
        type='DualBackbone',
        in_channels=(3, 1),
        backbones=[modality_backbone, modality_backbone],
        fusion='concat'),
    decode_head=dict(
        num_classes=num_classes,
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])))

train_dataloader = dict(_delete_=True, **_base_.seg_train_dataloader)
val_dataloader = dict(_delete_=True, **_base_.seg_val_dataloader)
test_dataloader = val_dataloader
val_evaluator = _base_.seg_val_evaluator
test_evaluator = val_evaluator
train_pipeline = _base_.seg_train_pipeline  # (the stock Cityscapes pipelines are not used)
test_pipeline = _base_.seg_test_pipeline
crop_size = _base_.seg_crop_size
data_preprocessor = _base_.seg_data_preprocessor
dataset_type = 'MultiModalSegDataset'
data_root = _base_.seg_data_root
