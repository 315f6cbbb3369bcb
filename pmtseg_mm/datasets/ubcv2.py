"""UBCV2 / DFC2023 track 1 fine-grained roofs (Huang et al., 2023), PMTSeg paper sec. IV-A-3."""
from mmdet.registry import DATASETS

from .multimodal_coco_panoptic import MultiModalCocoPanopticDataset

# The 12 roof categories of ``roof_fine_*.json`` (names as in the COCO files), then the one
# stuff class that the converter adds for every pixel outside a roof.
UBCV2_THING_CLASSES = ('flat_roof', 'gable_roof', 'gambrel_roof', 'row_roof',
                       'multiple_eave_roof', 'hipped_roof_v1', 'hipped_roof_v2', 'mansard_roof',
                       'pyramid_roof', 'arched_roof', 'revolved', 'other')
UBCV2_STUFF_CLASSES = ('background', )
UBCV2_PALETTE = [(220, 20, 60), (119, 11, 32), (0, 0, 142), (0, 0, 230), (106, 0, 228),
                 (0, 60, 100), (0, 80, 100), (0, 0, 70), (0, 0, 192), (250, 170, 30),
                 (100, 170, 30), (220, 220, 0), (60, 60, 60)]


@DATASETS.register_module()
class UBCV2Dataset(MultiModalCocoPanopticDataset):
    """UBCV2 512x512 optical + SAR written by ``tools/dataset_converters/ubcv2.py``:
    12 roof things + ``background`` stuff."""

    METAINFO = dict(
        classes=UBCV2_THING_CLASSES + UBCV2_STUFF_CLASSES,
        thing_classes=UBCV2_THING_CLASSES,
        stuff_classes=UBCV2_STUFF_CLASSES,
        palette=UBCV2_PALETTE)
