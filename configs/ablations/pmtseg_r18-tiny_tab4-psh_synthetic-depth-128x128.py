# Table IV row 5 (+PSH): the early-fusion baseline (one backbone over the stacked channels, one
# pixel decoder, no L_TMAA) with the prompt-driven head PSH (eq. 11-15, with L_CON).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(
    backbone=dict(in_channels=(4, ), backbones=[{{_base_.r18}}]),
    tmaa_loss=None,
    neck=dict(_delete_=True, type='SumFusionNeck', num_modalities=1,
              in_channels=[[64, 128, 256, 512]], out_channels=64,
              pixel_decoder={{_base_.model.neck.pixel_decoder}}))
