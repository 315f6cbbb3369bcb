"""VALID virtual aerial panoptic dataset (Chen et al., ICRA 2020), PMTSeg paper sec. IV-A-1."""
from typing import Dict, Sequence

from mmdet.registry import DATASETS

from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset

# The 30 categories of VALID in their raw id order 1..30 (raw id 0 is 'no-data': void).
VALID_RAW_CLASSES = ('tree', 'plant', 'road', 'pavement', 'land', 'water', 'pool', 'ice', 'stone',
                     'pier rubble', 'bridge', 'sign', 'small vehicle', 'large vehicle', 'building',
                     'animal', 'person', 'chair', 'fence', 'garbage bin', 'low obstacle',
                     'telegraph pole', 'traffic light', 'bus stop', 'lamp', 'high obstacle',
                     'tunnel', 'ship', 'plane', 'harbor')
# The paper reports 17 thing / 13 stuff classes without listing them. Default stuff: the
# amorphous ground/water surfaces (road, pavement, land, water, pool, ice, stone, pier rubble),
# extended structures with no countable extent in a nadir view (bridge, tunnel, harbor), low
# ground vegetation (plant) and fences (thin, fragmented lines); everything countable is a thing.
VALID_DEFAULT_STUFF = ('plant', 'road', 'pavement', 'land', 'water', 'pool', 'ice', 'stone',
                       'pier rubble', 'bridge', 'fence', 'tunnel', 'harbor')
VALID_RAW_PALETTE = [(0, 128, 0), (107, 142, 35), (128, 64, 128), (244, 35, 232), (152, 251, 152),
                     (0, 0, 255), (0, 191, 255), (224, 255, 255), (128, 128, 128), (139, 69, 19),
                     (190, 153, 153), (220, 220, 0), (0, 0, 142), (0, 0, 70), (70, 70, 70),
                     (255, 165, 0), (220, 20, 60), (255, 0, 255), (100, 100, 150), (0, 255, 127),
                     (255, 228, 196), (153, 153, 153), (250, 170, 30), (0, 80, 100),
                     (255, 255, 0), (119, 11, 32), (64, 0, 64), (0, 60, 100), (0, 0, 230),
                     (165, 42, 42)]


def valid_metainfo(stuff_classes: Sequence[str] = VALID_DEFAULT_STUFF) -> Dict[str, tuple]:
    """Metainfo for a thing/stuff split of VALID: things first, each group in raw-id order."""
    unknown = sorted(set(stuff_classes) - set(VALID_RAW_CLASSES))
    if unknown:
        raise ValueError(f'valid_metainfo: `stuff_classes` {unknown} are not VALID categories; '
                         f'expected names from {VALID_RAW_CLASSES}')
    things = tuple(c for c in VALID_RAW_CLASSES if c not in stuff_classes)
    stuff = tuple(c for c in VALID_RAW_CLASSES if c in stuff_classes)
    colours = dict(zip(VALID_RAW_CLASSES, VALID_RAW_PALETTE))
    return dict(classes=things + stuff, thing_classes=things, stuff_classes=stuff,
                palette=[colours[c] for c in things + stuff])


@DATASETS.register_module()
class VALIDDataset(MultiModalCocoPanopticDataset):
    """VALID 512x512 optical + depth written by ``tools/dataset_converters/valid.py`` with the
    default split of 17 thing and 13 stuff classes."""

    METAINFO = valid_metainfo()
