# Follow-up to Table IV's "+PSH helps" (not the paper's): the full model with every training image
# on the panoptic prompt (task_probs panoptic 1.0 instead of 0.3 semantic / 0.3 instance / 0.4
# panoptic), which separates the prompt-driven head from the task mix that gives panoptic targets
# to 40 % of the images only. Compared with the main config (same head, the mix) and tab4-tmaa-tmsf
# (no PSH: a Mask2Former head on panoptic targets).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(task_probs=dict(panoptic=1.0)))
