# The tiny PMTSeg (trained WITHOUT modality dropout) tested with the depth declared missing:
# the reference for what modality dropout buys when the DSM does not exist. Test the checkpoint of
# pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py with this config: python tools/test.py THIS_CONFIG work_dir/iter_1000.pth
_base_ = './pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'

# prob=1: the depth is always missing, filled with its normalisation mean as in inference
test_pipeline = [
    _base_.test_pipeline[0],
    dict(type='ModalityDropout', prob=1.0, modalities=['depth'], fill=_base_.modality_mean,
         bgr_to_rgb=True),
    *_base_.test_pipeline[1:-1],
    dict(_base_.test_pipeline[-1],
         meta_keys=_base_.test_pipeline[-1].meta_keys + ('missing_modalities', )),
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
