# Schedule of the CPU-sized tiny configs: 1000 iterations, lr x0.1 at 89 % and 96 %; twice the
# paper's learning rate and no 0.1x multiplier on the (from-scratch) backbones. Twin of
# configs/_base_/schedules/adamw_1000it_tiny.py.
from mmengine.config import read_base

with read_base():
    from .adamw_iter import *  # noqa: F401,F403

max_iters = 1000
val_interval = 1000
param_scheduler.merge(
    dict(end=max_iters, milestones=[int(max_iters * 0.89), int(max_iters * 0.96)]))
train_cfg.merge(dict(max_iters=max_iters, val_interval=val_interval))
default_hooks.merge(dict(checkpoint=dict(interval=val_interval)))
optim_wrapper.merge(
    dict(optimizer=dict(lr=2e-4),
         paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0, decay_mult=1.0)})))
