# Table X "w/o L_CON": PSH (text task prompt through the task MLP) without the label-level texts
# and the task-adapted contrastive loss (eq. 12-14).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(use_contrastive=False))
