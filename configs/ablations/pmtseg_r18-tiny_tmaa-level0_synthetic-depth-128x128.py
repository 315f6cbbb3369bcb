# L_TMAA on the finest backbone level only (stride 4) instead of all four levels.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(tmaa_loss=dict(levels=(0, )))
