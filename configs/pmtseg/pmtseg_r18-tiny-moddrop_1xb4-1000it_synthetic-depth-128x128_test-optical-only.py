# The modality-dropout PMTSeg tested with the depth declared missing (optical only). Training is
# that of pmtseg_r18-tiny-moddrop_...py (same seed, same weights): to avoid training twice, test
# its checkpoint with this config: python tools/test.py THIS_CONFIG work_dir/iter_1000.pth
_base_ = './pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128.py'

# prob=1: the depth is always missing, filled exactly as in training and inference
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
