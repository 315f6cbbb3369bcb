# Table IV row 1 (baseline, Mask2Former-EF): early fusion (one ResNet-18 over the stacked
# optical + depth channels), no L_TMAA, no TMSF (one pixel decoder: SumFusionNeck with one
# input), no PSH (plain learned queries trained on panoptic targets, one pass post-processed into
# the three outputs). Same decoder depth, queries and schedule as the tiny PMTSeg.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(
    backbone=dict(in_channels=(4, ), backbones=[{{_base_.r18}}]),
    tmaa_loss=None,
    neck=dict(_delete_=True, type='SumFusionNeck', num_modalities=1,
              in_channels=[[64, 128, 256, 512]], out_channels=64,
              pixel_decoder={{_base_.model.neck.pixel_decoder}}),
    panoptic_head=dict(prompt_mode='none', task_probs=None))
