"""Missing modalities: blank a modality in training (:class:`ModalityDropout`) and at inference.

A missing modality is never zeros chosen by the user: its channels are filled with fixed values,
by default the modality's normalisation mean, so that after :class:`MultiModalDataPreprocessor`
the model sees exactly 0 there. Training (this transform) and inference
(:class:`pmtseg_mm.apis.MultiModalInferencer` with ``missing=(...)``, whole-scene inference) go
through the same contract, :class:`pmtseg_mm.structures.ModalityLayout` (its ``fill``) with the
values of :func:`pmtseg_mm.structures.resolve_fill_values`.
"""
from typing import Dict, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from pmtseg_mm.structures import ModalityLayout, resolve_fill_values
from pmtseg_mm.structures.modality_layout import FillType


@TRANSFORMS.register_module()
class ModalityDropout(BaseTransform):
    """With probability ``prob``, blank one of ``modalities`` (chosen uniformly) so the model
    learns to work when that sensor is missing.

    Put it after :class:`LoadMultiModalImages` (it uses ``modalities``/``modality_channels``);
    the blanked channels get ``fill`` - by default the modality's normalisation mean, so the
    normalised input is 0, exactly what inference with ``missing=(name,)`` feeds. Adds
    ``missing_modalities`` (tuple of names, empty when nothing was dropped).

    Args:
        prob (float): Probability to drop a modality from a sample, in [0, 1].
        modalities (Sequence[str]): Modalities that may be dropped (never all of a sample's).
        fill: See :func:`resolve_fill_values`; give the preprocessor's mean (group layout, e.g.
            ``{{_base_.modality_mean}}``) together with its ``bgr_to_rgb``.
        bgr_to_rgb (bool | Sequence[bool]): The preprocessor's ``bgr_to_rgb``.
    """

    def __init__(self,
                 prob: float,
                 modalities: Sequence[str],
                 fill: Optional[FillType] = None,
                 bgr_to_rgb: Union[bool, Sequence[bool]] = False) -> None:
        if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            raise ValueError(f'ModalityDropout: `prob` must be a number in [0, 1], got {prob!r}')
        if isinstance(modalities, str) or not modalities:
            raise ValueError('ModalityDropout: `modalities` must be a non-empty list of modality '
                             f'names, got {modalities!r}')
        self.prob = float(prob)
        self.modalities = tuple(modalities)
        self.fill = fill
        self.bgr_to_rgb = bgr_to_rgb
        self._cache: Dict[tuple, ModalityLayout] = {}

    def _layout(self, names: tuple, channels: tuple) -> ModalityLayout:
        key = (names, channels)
        if key not in self._cache:
            self._cache[key] = ModalityLayout(names, channels, resolve_fill_values(
                self.fill, names, channels, self.bgr_to_rgb, owner='ModalityDropout.fill'))
        return self._cache[key]

    def transform(self, results: dict) -> dict:
        names = tuple(results.get('modalities', ()))
        channels = tuple(results.get('modality_channels', ()))
        if not names:
            raise KeyError('ModalityDropout needs `modalities`/`modality_channels` in the sample: '
                           'put it after LoadMultiModalImages')
        unknown = [m for m in self.modalities if m not in names]
        if unknown:
            raise KeyError(f'ModalityDropout: `modalities` {list(unknown)} are not loaded; the '
                           f'sample has {list(names)}')
        if set(self.modalities) >= set(names):
            raise ValueError(f'ModalityDropout: `modalities` {list(self.modalities)} would drop '
                             f'every modality of the sample {list(names)}; keep at least one')
        layout = self._layout(names, channels)
        dropped: tuple = ()
        if self.prob > 0 and np.random.rand() < self.prob:
            dropped = (self.modalities[np.random.randint(len(self.modalities))], )
            img = results['img']
            if not img.flags.writeable:
                img = img.copy()
            results['img'] = layout.fill(img, dropped)
        results['missing_modalities'] = dropped
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, modalities={self.modalities}, '
                f'fill={self.fill}, bgr_to_rgb={self.bgr_to_rgb})')


__all__ = ['ModalityDropout']
