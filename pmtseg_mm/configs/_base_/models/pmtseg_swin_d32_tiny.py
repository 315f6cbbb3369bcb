# CPU-sized PMTSeg on two 32-d Swin (one block per stage, 4x4 windows) from scratch, the tiny
# PMTSeg's 64-d neck and head. Twin of configs/_base_/models/pmtseg_swin-d32-tiny.py.
from mmengine.config import read_base

with read_base():
    from .pmtseg_r18_tiny import *  # noqa: F401,F403
    from .swin_t import *  # noqa: F401,F403

swin_d32 = dict(
    swin_t,
    embed_dims=32,
    depths=[1, 1, 1, 1],
    num_heads=[1, 2, 4, 8],
    window_size=4,
    drop_path_rate=0.1,
    convert_weights=False,
    init_cfg=None)
model.merge(
    dict(
        backbone=dict(backbones=[swin_d32, swin_d32]),
        neck=dict(in_channels=[[32, 64, 128, 256], [32, 64, 128, 256]])))
