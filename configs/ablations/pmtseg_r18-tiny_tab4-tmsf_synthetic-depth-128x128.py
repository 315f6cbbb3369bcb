# Table IV row 3 (+TMSF): two backbones fused by TMSF (eq. 7-10), no L_TMAA, no PSH.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(tmaa_loss=None, panoptic_head=dict(prompt_mode='none', task_probs=None))
