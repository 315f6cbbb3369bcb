# L_CON at batch level (OneFormer's query-text contrast, not in the paper): each image's query set
# against the label-text set of every image in the batch, unmatched slots with task-specific
# padding texts; the paper's per-image form (eq. 12-14) is the default.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(panoptic_head=dict(contrastive_level='batch'))
