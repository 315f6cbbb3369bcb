"""Apply transforms to one modality's channels of the stacked image."""
from typing import List, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmdet.registry import TRANSFORMS

from .loading import modality_slices


@TRANSFORMS.register_module()
class ModalityTransform(BaseTransform):
    """Run ``transforms`` on the channel slice of ``modality`` only.

    Photometric transforms (``PhotoMetricDistortion``, ``RandomBrightnessContrast`` ...) must
    not see the whole stack: some silently drop channels (cv2 colour conversion keeps 3) and
    their statistics are meaningless for depth or SAR. The inner transforms get a copy of the
    sample whose ``img`` is the slice; they must keep its shape, which is checked.

    Args:
        modality (str): Name of the modality, as listed in ``LoadMultiModalImages``.
        transforms (list[dict]): Transforms applied to that modality.
    """

    def __init__(self, modality: str, transforms: List[Union[dict, BaseTransform]]) -> None:
        if not transforms:
            raise ValueError(f'ModalityTransform(modality={modality!r}): `transforms` is empty')
        self.modality = modality
        self.transforms = Compose(
            [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in transforms])

    def transform(self, results: dict) -> dict:
        slices = modality_slices(results)
        if self.modality not in slices:
            raise KeyError(f'ModalityTransform: `modality`={self.modality!r} is not loaded; the '
                           f'sample has modalities {list(slices)}')
        img = results['img']
        part = np.ascontiguousarray(img[..., slices[self.modality]])
        sub = self.transforms(dict(results, img=part))
        if sub is None:
            return None
        out = sub['img']
        if out.ndim == 2:
            out = out[..., None]
        if out.shape != part.shape:
            raise ValueError(
                f'ModalityTransform(modality={self.modality!r}): '
                f'{[type(t).__name__ for t in self.transforms.transforms]} changed the '
                f'slice from shape {part.shape} to {out.shape}; only photometric transforms that '
                'keep the shape belong here (geometric ones go outside, on the whole stack)')
        img = img.copy()
        img[..., slices[self.modality]] = out.astype(img.dtype, copy=False)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(modality={self.modality!r}, transforms={self.transforms})'
