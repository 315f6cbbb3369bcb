# CPU-sized PMTSeg on two 32-d Swin from scratch (64-d neck and head), the tiny schedule: the
# CPU check of the Swin configs (tests take a loss and a predict step with it). Not trained here.
_base_ = [
    '../_base_/models/pmtseg_swin-d32-tiny.py', '../_base_/datasets/synthetic_depth_128.py',
    '../_base_/schedules/adamw_1000it_tiny.py'
]
model = dict(_base_.dataset_model, backbone=dict(in_channels=_base_.modality_channels),
             panoptic_head=dict(_base_.dataset_model.panoptic_head, class_names=_base_.class_names))
