"""COCO-panoptic dataset whose samples carry one file per co-registered modality."""
import os.path as osp
from typing import Dict, Optional

from mmdet.datasets import CocoPanopticDataset
from mmdet.registry import DATASETS


@DATASETS.register_module()
class MultiModalCocoPanopticDataset(CocoPanopticDataset):
    """:class:`CocoPanopticDataset` with a folder per modality (layout in DESIGN.md).

    Every modality file shares the stem of the image ``file_name`` in the panoptic JSON:
    ``<data_root>/<modalities[name]>/<stem><modality_suffixes[name]>``. Each data info gets
    ``modality_paths`` (ordered like ``modalities``) for :class:`LoadMultiModalImages`;
    ``img_path`` stays the first modality's (optical) file so stock hooks and visualisers work.
    The panoptic PNG is ``<stem>.png`` whatever the image extension (mmdet only maps ``.jpg``).

    Args:
        modalities (dict[str, str]): Modality name -> folder prefix relative to ``data_root``,
            e.g. ``dict(optical='optical/train/', depth='depth/train/')``. Order matters: it is
            the channel order of the stacked image.
        modality_suffixes (dict[str, str], optional): Modality name -> file suffix (``'.tif'``).
            A modality without one uses the extension of the JSON ``file_name``.
    """

    def __init__(self,
                 *args,
                 modalities: Dict[str, str],
                 modality_suffixes: Optional[Dict[str, str]] = None,
                 **kwargs) -> None:
        if not isinstance(modalities, dict) or not modalities:
            raise ValueError('MultiModalCocoPanopticDataset: `modalities` must be a non-empty dict '
                             f'name -> folder prefix, got {modalities!r}')
        modality_suffixes = dict(modality_suffixes or {})
        unknown = set(modality_suffixes) - set(modalities)
        if unknown:
            raise ValueError(f'MultiModalCocoPanopticDataset: `modality_suffixes` names {sorted(unknown)} '
                             f'which are not in `modalities` {list(modalities)}')
        self.modalities = dict(modalities)
        self.modality_suffixes = modality_suffixes
        super().__init__(*args, **kwargs)

    def _join_prefix(self) -> None:
        """Also resolve the modality prefixes against ``data_root``."""
        super()._join_prefix()
        if self.data_root is not None:
            self.modalities = {
                name: osp.join(self.data_root, prefix)
                for name, prefix in self.modalities.items()
            }

    def parse_data_info(self, raw_data_info: dict) -> dict:
        data_info = super().parse_data_info(raw_data_info)
        stem, ext = osp.splitext(raw_data_info['raw_img_info']['file_name'])
        if data_info['seg_map_path'] is not None:  # mmdet only maps '.jpg' to the PNG name
            data_info['seg_map_path'] = osp.join(self.data_prefix['seg'], stem + '.png')
        data_info['modality_paths'] = {
            name: osp.join(prefix, stem + self.modality_suffixes.get(name, ext))
            for name, prefix in self.modalities.items()
        }
        return data_info
