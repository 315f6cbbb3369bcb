"""Missing modalities: blank a modality in training (:class:`ModalityDropout`) and at inference.

A missing modality is never zeros chosen by the user: its channels are filled with fixed values,
by default the modality's normalisation mean, so that after :class:`MultiModalDataPreprocessor`
the model sees exactly 0 there. Training (this transform) and inference
(:class:`pmtseg_mm.apis.MultiModalInferencer` with ``missing=(...)``, whole-scene inference) go
through the same two functions, :func:`resolve_fill_values` and :func:`blank_modalities`.
"""
from typing import Dict, Optional, Sequence, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from .loading import modality_slices

FillType = Union[Dict[str, Union[float, Sequence[float]]], Sequence[Union[float, Sequence[float]]]]


def resolve_fill_values(fill: Optional[FillType], modalities: Sequence[str],
                        channels: Sequence[int],
                        bgr_to_rgb: Union[bool, Sequence[bool]] = False,
                        owner: str = 'fill') -> Dict[str, np.ndarray]:
    """Fill values per modality, in the channel order of the loaded (stacked) image.

    Args:
        fill: None (0 everywhere), a dict ``name -> value or per-channel values`` in loaded
            channel order, or one group per modality in stack order - the layout of
            :class:`MultiModalDataPreprocessor`'s ``mean`` (e.g. ``{{_base_.modality_mean}}``).
        modalities: Modality names in stack order.
        channels: Channels per modality, in stack order.
        bgr_to_rgb: The preprocessor's ``bgr_to_rgb`` (a bool applies to the first modality);
            only used with the group layout, whose values of flipped modalities are RGB-ordered
            and are reversed here into the loaded BGR order.
        owner: Name used in error messages (e.g. ``ModalityDropout.fill``).

    Returns:
        dict: ``name -> float32 array (C,)``.
    """
    modalities, channels = list(modalities), [int(c) for c in channels]
    if len(modalities) != len(channels):
        raise ValueError(f'{owner}: {len(modalities)} modalities {modalities} but {len(channels)} '
                         f'channel counts {channels}')
    if fill is None:
        return {n: np.zeros(c, np.float32) for n, c in zip(modalities, channels)}
    if isinstance(fill, dict):
        unknown = sorted(set(fill) - set(modalities))
        if unknown:
            raise ValueError(f'{owner}: unknown modalities {unknown}; the sample has {modalities}')
        groups = [fill.get(n, 0.0) for n in modalities]
        flips = [False] * len(modalities)
    else:
        groups = list(fill)
        if len(groups) != len(modalities):
            raise ValueError(f'{owner}: {len(groups)} value groups for {len(modalities)} '
                             f'modalities {modalities}; give one group per modality (the '
                             "preprocessor's `mean` layout) or a dict name -> values")
        flips = ([bool(bgr_to_rgb)] + [False] * (len(modalities) - 1)
                 if isinstance(bgr_to_rgb, bool) else [bool(f) for f in bgr_to_rgb])
        if len(flips) != len(modalities):
            raise ValueError(f'{owner}: `bgr_to_rgb` has {len(flips)} entries for '
                             f'{len(modalities)} modalities')
    out: Dict[str, np.ndarray] = {}
    for name, c, group, flip in zip(modalities, channels, groups, flips):
        values = np.atleast_1d(np.asarray(group, dtype=np.float64)).astype(np.float32)
        if values.ndim != 1 or not np.isfinite(values).all():
            raise ValueError(f'{owner}: values of modality {name!r} must be finite numbers, '
                             f'got {group!r}')
        if values.size == 1:
            values = np.repeat(values, c)
        if values.size != c:
            raise ValueError(f'{owner}: modality {name!r} has {c} channel(s) but {values.size} '
                             f'fill values {group!r} were given')
        out[name] = values[::-1].copy() if flip else values
    return out


def blank_modalities(img: np.ndarray, modalities: Sequence[str], channels: Sequence[int],
                     names: Sequence[str], fill_values: Dict[str, np.ndarray]) -> np.ndarray:
    """Set the channels of each modality in ``names`` of a stacked (H, W, ΣC) image to its fill
    values, in place; returns ``img``."""
    slices = modality_slices(dict(modalities=tuple(modalities), modality_channels=tuple(channels)))
    unknown = [n for n in names if n not in slices]
    if unknown:
        raise KeyError(f'missing modalities {unknown} are not among the loaded modalities '
                       f'{list(modalities)}')
    if img.ndim != 3 or img.shape[2] != sum(channels):
        raise ValueError(f'the stacked image has shape {img.shape} but the modalities '
                         f'{list(modalities)} have {list(channels)} channels')
    for name in names:
        img[..., slices[name]] = fill_values[name].astype(img.dtype, copy=False)
    return img


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
        self._cache: Dict[tuple, Dict[str, np.ndarray]] = {}

    def _fill_values(self, names: tuple, channels: tuple) -> Dict[str, np.ndarray]:
        key = (names, channels)
        if key not in self._cache:
            self._cache[key] = resolve_fill_values(self.fill, names, channels, self.bgr_to_rgb,
                                                   owner='ModalityDropout.fill')
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
        fill_values = self._fill_values(names, channels)
        dropped: tuple = ()
        if self.prob > 0 and np.random.rand() < self.prob:
            dropped = (self.modalities[np.random.randint(len(self.modalities))], )
            img = results['img']
            if not img.flags.writeable:
                img = img.copy()
            results['img'] = blank_modalities(img, names, channels, dropped, fill_values)
        results['missing_modalities'] = dropped
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, modalities={self.modalities}, '
                f'fill={self.fill}, bgr_to_rgb={self.bgr_to_rgb})')


__all__ = ['ModalityDropout', 'blank_modalities', 'resolve_fill_values']
