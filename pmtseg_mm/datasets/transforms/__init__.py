from .loading import LoadMultiModalImages, modality_slices, read_raster
from .modality_dropout import ModalityDropout
from .modality_transform import ModalityTransform
from .void_nodata import VoidNodata

__all__ = ['LoadMultiModalImages', 'ModalityDropout', 'ModalityTransform', 'modality_slices',
           'read_raster', 'VoidNodata']
