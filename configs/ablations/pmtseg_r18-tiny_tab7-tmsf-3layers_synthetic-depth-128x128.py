# Table VII "Layer Num. 3": 3 cross-attention layers per modality and scale in TMSF (eq. 8-9).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(neck=dict(num_layers=3))
