# Table XI "NT": natural-language task encoding - the text encoder's embedding of "The task is
# {task}." is I_task itself (no task MLP), no label-level texts, no L_CON.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(prompt_mode='nt'))
