# Fig. 6: loss weight alpha = 7 of L_TMAA in eq. 16 (the paper's choice is 5).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(tmaa_loss=dict(loss_weight=7.0))
