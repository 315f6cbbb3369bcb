from . import transforms  # noqa: F401
from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset
from .synthetic import SYNTHETIC_METAINFO, SyntheticRSDataset, generate_synthetic

__all__ = ['MultiModalCocoPanopticDataset', 'SYNTHETIC_METAINFO', 'SyntheticRSDataset',
           'generate_synthetic']
