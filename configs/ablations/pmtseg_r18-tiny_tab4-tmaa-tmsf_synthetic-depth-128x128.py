# Table IV row 4 (+TMAA +TMSF): PMTSeg without PSH (plain learned queries, panoptic targets).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(prompt_mode='none', task_probs=None))
