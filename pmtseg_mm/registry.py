"""Register the multimodal parts into MMSegmentation's registries as well as mmdet's.

One implementation each: the class objects registered in mmdet are added, unchanged, to the
mmseg registry where that library looks them up, so ``default_scope='mmseg'`` configs (and
mmseg's own ``PhotoMetricDistortion`` etc. inside ``ModalityTransform``) resolve them too.
"""
from typing import Dict, Tuple, Type

from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS

from .datasets.transforms import LoadMultiModalImages, ModalityTransform, VoidNodata
from .models.backbones import DualBackbone
from .models.data_preprocessors import MultiModalDataPreprocessor
from .models.losses import TMAALoss

SHARED_WITH_MMSEG: Dict[str, Tuple[Type, ...]] = {
    'TRANSFORMS': (LoadMultiModalImages, ModalityTransform, VoidNodata),
    'MODELS': (MultiModalDataPreprocessor, DualBackbone, TMAALoss),
}


def register_into_mmseg() -> None:
    """Add the shared classes to mmseg's TRANSFORMS/MODELS (idempotent)."""
    registries = {'TRANSFORMS': MMSEG_TRANSFORMS, 'MODELS': MMSEG_MODELS}
    for key, classes in SHARED_WITH_MMSEG.items():
        registry = registries[key]
        for cls in classes:
            registered = registry.module_dict.get(cls.__name__)
            if registered is None:
                registry.register_module(module=cls)
            elif registered is not cls:
                raise RuntimeError(f'mmseg {key} already has a different {cls.__name__} '
                                   f'({registered.__module__}); pmtseg_mm cannot register its own')


register_into_mmseg()
