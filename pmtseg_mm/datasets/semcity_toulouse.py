"""SemCity Toulouse (Roscher et al., 2020) as used by PMTSeg (paper sec. IV-A-2): optical + NIR."""
from typing import Dict, Tuple

from mmdet.registry import DATASETS

from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset

# Raw label index -> (name, colour of the official colour label maps TLS_GT_*.tif). 0 = void.
SEMCITY_RAW_CLASSES: Tuple[Tuple[str, Tuple[int, int, int]], ...] = (
    ('void', (255, 255, 255)),
    ('impervious surface', (38, 38, 38)),
    ('building', (238, 118, 33)),
    ('pervious surface', (34, 139, 34)),
    ('high vegetation', (0, 222, 137)),
    ('car', (255, 0, 0)),
    ('water', (0, 0, 238)),
    ('sport venues', (160, 30, 230)),
)


def semcity_metainfo(car_is_thing: bool = False) -> Dict[str, tuple]:
    """Metainfo with the things first: building (+ car if ``car_is_thing``), then the stuff.

    The paper has building instances only, so car is stuff by default.
    """
    things = ('building', 'car') if car_is_thing else ('building', )
    colours = dict(SEMCITY_RAW_CLASSES[1:])
    stuff = tuple(name for name, _ in SEMCITY_RAW_CLASSES[1:] if name not in things)
    classes = things + stuff
    return dict(classes=classes, thing_classes=things, stuff_classes=stuff,
                palette=[colours[name] for name in classes])


@DATASETS.register_module()
class SemCityToulouseDataset(MultiModalCocoPanopticDataset):
    """SemCity Toulouse 128x128 patches (optical + NIR) written by
    ``tools/dataset_converters/semcity_toulouse.py``: 1 thing (building), 6 stuff classes."""

    METAINFO = semcity_metainfo(car_is_thing=False)
