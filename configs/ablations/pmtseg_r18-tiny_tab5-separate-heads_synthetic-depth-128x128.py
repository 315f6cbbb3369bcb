# Table V "Separate": shared backbones, TMAA and TMSF; one plain Mask2Former head per task, each
# trained on its own task's targets on every image (losses summed), no prompt, no L_CON.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(type='SeparateTaskHeads', prompt_mode='none', task_probs=None))
