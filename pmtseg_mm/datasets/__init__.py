from . import transforms  # noqa: F401
from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset
from .semcity_toulouse import SemCityToulouseDataset
from .synthetic import SYNTHETIC_METAINFO, SyntheticRSDataset, generate_synthetic
from .ubcv2 import UBCV2Dataset
from .valid import VALIDDataset

__all__ = ['MultiModalCocoPanopticDataset', 'SemCityToulouseDataset', 'SYNTHETIC_METAINFO',
           'SyntheticRSDataset', 'UBCV2Dataset', 'VALIDDataset', 'generate_synthetic']
