from .loading import LoadMultiModalImages, modality_slices, read_raster
from .modality_dropout import ModalityDropout, blank_modalities, resolve_fill_values
from .modality_transform import ModalityTransform

__all__ = ['LoadMultiModalImages', 'ModalityDropout', 'ModalityTransform', 'blank_modalities',
           'modality_slices', 'read_raster', 'resolve_fill_values']
