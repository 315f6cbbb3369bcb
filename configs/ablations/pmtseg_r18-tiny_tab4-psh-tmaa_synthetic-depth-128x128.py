# Table IV row 6 (+PSH +TMAA): two backbones with L_TMAA, summed before one pixel decoder
# (SumFusionNeck, no TMSF), PSH head.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(
    neck=dict(_delete_=True, type='SumFusionNeck', num_modalities=2,
              in_channels=[[64, 128, 256, 512]] * 2, out_channels=64,
              pixel_decoder={{_base_.model.neck.pixel_decoder}}))
