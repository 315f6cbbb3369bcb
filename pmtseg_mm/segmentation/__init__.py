"""MMSegmentation side: a segmentor with the TMAA auxiliary loss and a semantic multimodal dataset.

The shared parts (``LoadMultiModalImages``, ``ModalityTransform``, ``MultiModalDataPreprocessor``,
``DualBackbone``, ``TMAALoss``) are registered into mmseg's registries by :mod:`pmtseg_mm.registry`.
"""
from .dataset import MultiModalSegDataset, panoptic_to_semantic
from .encoder_decoder import MultiModalEncoderDecoder

__all__ = ['MultiModalEncoderDecoder', 'MultiModalSegDataset', 'panoptic_to_semantic']
