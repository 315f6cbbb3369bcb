# Tiny PMTSeg trained with modality dropout: with probability 0.3 a training sample loses its
# depth, filled with the depth normalisation mean (normalised input 0), the fill of inference
# with a declared missing modality. Python-style twin of
# configs/pmtseg/pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128.py.
from mmengine.config import read_base

from pmtseg_mm.datasets.transforms import ModalityDropout

with read_base():
    from .pmtseg_r18_tiny_1xb4_1000it_synthetic_depth_128x128 import *  # noqa: F401,F403

# the base's training pipeline with the dropout after the photometric step, packing which
# modalities were dropped
train_pipeline = [
    *train_pipeline[:3],
    dict(type=ModalityDropout, prob=0.3, modalities=['depth'], fill=modality_mean,
         bgr_to_rgb=True),
    *train_pipeline[3:-1],
    dict(train_pipeline[-1], meta_keys=meta_keys + ('missing_modalities', )),
]
train_dataloader.merge(dict(dataset=dict(pipeline=train_pipeline)))
