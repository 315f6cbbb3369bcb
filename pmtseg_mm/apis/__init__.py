"""Inference entry points: :class:`MultiModalInferencer` (images, arrays) and
:func:`infer_scene` (whole co-registered GeoTIFF scenes by windows)."""
from .inferencer import MultiModalInferencer
from .inputs import ModalitySpec, find_config, parse_modality_args
from .scene import SceneReader, SceneResult, infer_scene

__all__ = ['ModalitySpec', 'MultiModalInferencer', 'SceneReader', 'SceneResult', 'find_config',
           'infer_scene', 'parse_modality_args']
