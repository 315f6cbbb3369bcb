# Table VI "KL": L_TMAA compares the modalities' affinity distributions with
# KL(optical || aux) instead of JS (eq. 6).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(tmaa_loss=dict(mode='kl'))
