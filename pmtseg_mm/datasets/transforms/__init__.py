from .loading import LoadMultiModalImages, modality_slices, read_raster
from .modality_transform import ModalityTransform

__all__ = ['LoadMultiModalImages', 'ModalityTransform', 'modality_slices', 'read_raster']
