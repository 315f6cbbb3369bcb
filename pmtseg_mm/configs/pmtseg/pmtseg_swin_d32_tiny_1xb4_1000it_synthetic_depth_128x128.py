# CPU-sized PMTSeg on two 32-d Swin from scratch, the tiny schedule. Python-style twin of
# configs/pmtseg/pmtseg_swin-d32-tiny_1xb4-1000it_synthetic-depth-128x128.py.
from mmengine.config import read_base

with read_base():
    from .._base_.models.pmtseg_swin_d32_tiny import *  # noqa: F401,F403
    from .._base_.datasets.synthetic_depth_128 import *  # noqa: F401,F403
    from .._base_.schedules.adamw_1000it_tiny import *  # noqa: F401,F403

model.merge(
    dict(dataset_model, backbone=dict(in_channels=modality_channels),
         panoptic_head=dict(dataset_model['panoptic_head'], class_names=class_names)))
