# Paper IV-C: AdamW, lr 1e-4, weight decay 0.05 (Mask2Former's recipe, iteration based), on
# mmdet's default runtime with iteration-based checkpoints (one per validation) and logs.
# Top-level configs set max_iters (= epochs x ceil(num_train / batch)) and val_interval, and
# override with them the keys built from them below:
#     param_scheduler = dict(end=max_iters,
#                            milestones=[int(max_iters * 0.89), int(max_iters * 0.96)])
#     train_cfg = dict(max_iters=max_iters, val_interval=val_interval)
#     default_hooks = dict(checkpoint=dict(interval=val_interval))
_base_ = 'mmdet::_base_/default_runtime.py'
custom_imports = dict(imports=['pmtseg_mm'], allow_failed_imports=False)
max_iters = 75000
val_interval = 5000
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
# GroupedOptimWrapperConstructor: one parameter group per distinct lr/decay (not one per
# parameter), so the fused AdamW kernel updates all tensors of a group in one call
optim_wrapper = dict(
    type='OptimWrapper',
    constructor='GroupedOptimWrapperConstructor',
    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05, eps=1e-8, betas=(0.9, 0.999),
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
param_scheduler = dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
                       milestones=[int(max_iters * 0.89), int(max_iters * 0.96)], gamma=0.1)
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    checkpoint=dict(by_epoch=False, save_last=True, max_keep_ckpts=3, interval=val_interval),
    logger=dict(interval=50))
log_processor = dict(by_epoch=False)
