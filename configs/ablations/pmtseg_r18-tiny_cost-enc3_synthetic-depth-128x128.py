# Speed/accuracy point (issue 12): 3 MSDeformAttn encoder layers in each modality's pixel decoder
# (the tiny default is 1; the R50 default, as in Mask2Former, is 6; the paper does not state it).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(neck=dict(pixel_decoder=dict(encoder=dict(num_layers=3))))
