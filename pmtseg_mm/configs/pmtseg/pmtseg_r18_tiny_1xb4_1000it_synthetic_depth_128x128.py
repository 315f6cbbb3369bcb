# CPU-sized PMTSeg (two ResNet-18 from scratch, 64-d) for the demo and the synthetic benchmark.
# Python-style twin of configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py.
from mmengine.config import read_base

with read_base():
    from .._base_.models.pmtseg_r18_tiny import *  # noqa: F401,F403
    from .._base_.datasets.synthetic_depth_128 import *  # noqa: F401,F403
    from .._base_.schedules.adamw_1000it_tiny import *  # noqa: F401,F403

model.merge(
    dict(dataset_model, backbone=dict(in_channels=modality_channels),
         panoptic_head=dict(dataset_model['panoptic_head'], class_names=class_names)))
