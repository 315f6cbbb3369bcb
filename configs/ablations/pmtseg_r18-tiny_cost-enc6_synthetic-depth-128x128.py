# Speed/accuracy point (issue 12): 6 MSDeformAttn encoder layers in each modality's pixel decoder,
# Mask2Former's depth (the tiny default is 1; the R50 default is 3; the paper does not state it).
_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
model = dict(neck=dict(pixel_decoder=dict(encoder=dict(num_layers=6))))
