# Table IV row 2 (+TMAA): two backbones aligned by L_TMAA (eq. 2-6, alpha = 5); without TMSF their
# features are summed level by level before one pixel decoder (SumFusionNeck); no PSH.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(
    neck=dict(_delete_=True, type='SumFusionNeck', num_modalities=2,
              in_channels=[[64, 128, 256, 512]] * 2, out_channels=64,
              pixel_decoder={{_base_.model.neck.pixel_decoder}}),
    panoptic_head=dict(prompt_mode='none', task_probs=None))
