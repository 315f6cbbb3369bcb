# Extra Table IV row (not in the paper): two backbones summed before one pixel decoder, without
# L_TMAA, TMSF or PSH. Between the baseline (early fusion) and "+TMAA" it separates the effect of
# a second backbone from that of the alignment loss.
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(
    tmaa_loss=None,
    neck=dict(_delete_=True, type='SumFusionNeck', num_modalities=2,
              in_channels=[[64, 128, 256, 512]] * 2, out_channels=64,
              pixel_decoder={{_base_.model.neck.pixel_decoder}}),
    panoptic_head=dict(prompt_mode='none', task_probs=None))
