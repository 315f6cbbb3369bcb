# CPU-sized optical-only Mask2Former (ResNet-18 from scratch, 64-d): 1000 iterations.
# Python-style twin of
# configs/baselines/mask2former-optical_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py.
from mmengine.config import read_base

with read_base():
    from .._base_.models.mask2former_ef_r18_tiny import *  # noqa: F401,F403
    from .._base_.datasets.synthetic_optical_128 import *  # noqa: F401,F403
    from .._base_.schedules.adamw_1000it_tiny import *  # noqa: F401,F403

model.merge(dict(dataset_model, backbone=dict(in_channels=(sum(modality_channels), ))))
