# Table XI "LV": a learnable vector per task as I_task (no text, no L_CON).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(prompt_mode='lv'))
