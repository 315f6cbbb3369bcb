# Mask2Former-EF (the modalities stacked as 4 input channels), Swin-T (mmdet), on synthetic
# optical + depth; 30000 iterations. Python-style twin of
# configs/baselines/mask2former-ef_swin-t_1xb4-300e_synthetic-depth-128x128.py.
from mmengine.config import read_base

with read_base():
    from .._base_.models.mask2former_ef_swin_t import *  # noqa: F401,F403
    from .._base_.datasets.synthetic_depth_128 import *  # noqa: F401,F403
    from .._base_.schedules.adamw_iter import *  # noqa: F401,F403

model.merge(dict(dataset_model, backbone=dict(in_channels=(sum(modality_channels), ))))

max_iters = 30000
val_interval = 3000
param_scheduler.merge(
    dict(end=max_iters, milestones=[int(max_iters * 0.89), int(max_iters * 0.96)]))
train_cfg.merge(dict(max_iters=max_iters, val_interval=val_interval))
default_hooks.merge(dict(checkpoint=dict(interval=val_interval)))
