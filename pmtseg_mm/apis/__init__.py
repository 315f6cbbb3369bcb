"""Inference entry points: :class:`MultiModalInferencer` (images, arrays) and
:func:`infer_scene` (whole co-registered GeoTIFF scenes by windows)."""
from .inferencer import MultiModalInferencer
from .inputs import ModalitySpec, find_config

__all__ = ['ModalitySpec', 'MultiModalInferencer', 'find_config']
