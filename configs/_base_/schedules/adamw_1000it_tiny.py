# Schedule of the CPU-sized tiny configs: 1000 iterations, lr x0.1 at 89 % and 96 %. From scratch
# on a short CPU budget: twice the paper's learning rate, and no 0.1x multiplier on the backbones
# (meant for pretrained ones).
_base_ = './adamw_iter.py'
max_iters = 1000
val_interval = 1000
param_scheduler = dict(end=max_iters, milestones=[int(max_iters * 0.89), int(max_iters * 0.96)])
train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
default_hooks = dict(checkpoint=dict(interval=val_interval))
optim_wrapper = dict(
    optimizer=dict(lr=2e-4),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0, decay_mult=1.0)}))
