# CPU-sized PMTSeg (two ResNet-18 from scratch, 64-d) for the demo and the synthetic benchmark.
_base_ = [
    '../_base_/models/pmtseg_r18-tiny.py', '../_base_/datasets/synthetic_depth_128.py',
    '../_base_/schedules/adamw_1000it_tiny.py'
]
model = dict(_base_.dataset_model, backbone=dict(in_channels=_base_.modality_channels),
             panoptic_head=dict(_base_.dataset_model.panoptic_head, class_names=_base_.class_names))
