# The data preprocessor of the PMTSeg and Mask2Former-EF model bases: per-modality mean/std,
# optical BGR -> RGB, images padded to a multiple of 32, masks with 0 and labels with 255. Twin
# of configs/_base_/models/multimodal_data_preprocessor.py; the statistics are placeholders that
# the dataset base's `dataset_model` sets.
from pmtseg_mm.models.data_preprocessors import MultiModalDataPreprocessor

multimodal_data_preprocessor = dict(
    type=MultiModalDataPreprocessor,
    modality_channels=(3, 1),
    mean=[[123.675, 116.28, 103.53], [0.0]],
    std=[[58.395, 57.12, 57.375], [1.0]],
    bgr_to_rgb=True,
    pad_size_divisor=32,
    pad_mask=True,
    mask_pad_value=0,
    pad_seg=True,
    seg_pad_value=255)
