# Tiny PMTSeg trained with modality dropout: with probability 0.3 a training sample loses its
# depth, blanked to the depth normalisation mean (normalised input 0) - the same fill that
# inference with a declared missing modality feeds (MultiModalInferencer(missing=('depth',)),
# demo --missing depth). Tested with both modalities; the *_test-optical-only twin tests the same
# training without depth.
_base_ = './pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'

# the base's training pipeline with the dropout after the photometric step, packing which
# modalities were dropped
train_pipeline = [
    *_base_.train_pipeline[:3],
    dict(type='ModalityDropout', prob=0.3, modalities=['depth'], fill=_base_.modality_mean,
         bgr_to_rgb=True),
    *_base_.train_pipeline[3:-1],
    dict(_base_.train_pipeline[-1], meta_keys=_base_.meta_keys + ('missing_modalities', )),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
