# The modality-dropout PMTSeg tested with the depth declared missing: test the checkpoint of
# pmtseg_r18_tiny_moddrop_1xb4_1000it_synthetic_depth_128x128.py with this config. Python-style
# twin of
# configs/pmtseg/pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128_test-optical-only.py.
from mmengine.config import read_base

from pmtseg_mm.datasets.transforms import ModalityDropout

with read_base():
    from .pmtseg_r18_tiny_moddrop_1xb4_1000it_synthetic_depth_128x128 import *  # noqa: F401,F403

# prob=1: the depth is always missing, filled with its normalisation mean as in inference
test_pipeline = [
    test_pipeline[0],
    dict(type=ModalityDropout, prob=1.0, modalities=['depth'], fill=modality_mean,
         bgr_to_rgb=True),
    *test_pipeline[1:-1],
    dict(test_pipeline[-1], meta_keys=test_pipeline[-1]['meta_keys'] + ('missing_modalities', )),
]
val_dataloader.merge(dict(dataset=dict(pipeline=test_pipeline)))
test_dataloader = val_dataloader
