# Table IV row 7 (+PSH +TMSF): PMTSeg without L_TMAA.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(tmaa_loss=None)
