# CPU-sized PMTSeg on Swin backbones: the tiny PMTSeg's 64-d neck and head on two Swin of 32-d
# patch embeddings, one block per stage and 4x4 windows (per-level channels 32/64/128/256), from
# scratch. For tests and CPU checks of the Swin configs; it is not Swin-T.
_base_ = ['./pmtseg_r18-tiny.py', './swin-t.py']
swin_d32 = dict(
    _base_.swin_t,
    embed_dims=32,
    depths=[1, 1, 1, 1],
    num_heads=[1, 2, 4, 8],
    window_size=4,
    drop_path_rate=0.1,
    convert_weights=False,
    init_cfg=None)
model = dict(
    backbone=dict(backbones=[swin_d32, swin_d32]),
    neck=dict(in_channels=[[32, 64, 128, 256], [32, 64, 128, 256]]))
