# Table VI "ED": L_TMAA compares the modalities' affinity distributions with the
# Euclidean distance instead of JS (eq. 6).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(tmaa_loss=dict(mode='ed'))
