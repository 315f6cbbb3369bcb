# Paper IV-C: AdamW, lr 1e-4, weight decay 0.05 (Mask2Former's recipe, iteration based), on
# mmdet's default runtime with iteration-based checkpoints (one per validation) and logs. Twin of
# configs/_base_/schedules/adamw_iter.py: top-level configs set max_iters and val_interval and
# merge the keys built from them (param_scheduler, train_cfg, default_hooks.checkpoint).
from mmengine.config import read_base
from mmengine.optim.optimizer import OptimWrapper
from mmengine.optim.scheduler import MultiStepLR
from mmengine.runner.loops import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW

from pmtseg_mm.engine import GroupedOptimWrapperConstructor

with read_base():
    from ..default_runtime import *  # noqa: F401,F403

max_iters = 75000
val_interval = 5000
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
# GroupedOptimWrapperConstructor: one parameter group per distinct lr/decay (not one per
# parameter), so the fused AdamW kernel updates all tensors of a group in one call
optim_wrapper = dict(
    type=OptimWrapper,
    constructor=GroupedOptimWrapperConstructor,
    optimizer=dict(type=AdamW, lr=0.0001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999),
                   fused=True),
    paramwise_cfg=dict(
        custom_keys={
            'backbone': dict(lr_mult=0.1, decay_mult=1.0),
            'query_embed': embed_multi,
            'query_feat': embed_multi,
            'level_embed': embed_multi,
        },
        norm_decay_mult=0.0),
    clip_grad=dict(max_norm=0.01, norm_type=2))
param_scheduler = dict(type=MultiStepLR, begin=0, end=max_iters, by_epoch=False,
                       milestones=[int(max_iters * 0.89), int(max_iters * 0.96)], gamma=0.1)
train_cfg = dict(type=IterBasedTrainLoop, max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks.merge(
    dict(checkpoint=dict(by_epoch=False, save_last=True, max_keep_ckpts=3, interval=val_interval),
         logger=dict(interval=50)))
log_processor.merge(dict(by_epoch=False))
