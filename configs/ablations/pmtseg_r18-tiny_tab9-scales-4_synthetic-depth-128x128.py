# Table IX: TMSF's scale-matched cross-attention fusion at strides (4, ) only; the other scales
# are fused by the joint MLP of eq. 7 (F_T = F_J).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(neck=dict(scales=(4, )))
