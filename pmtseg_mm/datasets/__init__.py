from . import transforms  # noqa: F401
from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset

__all__ = ['MultiModalCocoPanopticDataset']
