"""Per-modality normalisation for channel-stacked multimodal images."""
from typing import List, Optional, Sequence, Union

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS


@MODELS.register_module()
class MultiModalDataPreprocessor(DetDataPreprocessor):
    """:class:`DetDataPreprocessor` for images stacking several modalities along channels.

    Each channel group (modality) gets its own mean/std, and BGR→RGB flips only the groups
    that ask for it. Padding of images, masks and semantic maps and batch augments are exactly
    DetDataPreprocessor's. The output is one tensor (B, ΣC, H, W).

    Args:
        modality_channels (Sequence[int]): Channels per modality, in stack order, e.g. (3, 1).
        mean (Sequence[Sequence[float]], optional): One mean per modality: a list with one value
            per channel of that modality (or a single value broadcast to its channels).
        std (Sequence[Sequence[float]], optional): Same layout as ``mean``.
        bgr_to_rgb (bool | Sequence[bool]): Per modality (a bool applies to the first modality
            only); a flipped modality must have 3 channels.
        **kwargs: Other :class:`DetDataPreprocessor` arguments (pad_size_divisor, pad_mask,
            pad_seg, seg_pad_value, batch_augments, ...).
    """

    def __init__(self,
                 modality_channels: Sequence[int],
                 mean: Optional[Sequence[Sequence[float]]] = None,
                 std: Optional[Sequence[Sequence[float]]] = None,
                 bgr_to_rgb: Union[bool, Sequence[bool]] = False,
                 **kwargs) -> None:
        if kwargs.pop('rgb_to_bgr', False):
            raise ValueError('MultiModalDataPreprocessor: use `bgr_to_rgb` per modality instead of '
                             '`rgb_to_bgr`')
        super().__init__(mean=None, std=None, bgr_to_rgb=False, **kwargs)
        channels = [int(c) for c in modality_channels]
        if not channels or min(channels) < 1:
            raise ValueError('MultiModalDataPreprocessor: `modality_channels` must list a positive '
                             f'channel count per modality, got {modality_channels!r}')
        self.modality_channels = tuple(channels)
        self.num_channels = sum(channels)
        if (mean is None) != (std is None):
            raise ValueError('MultiModalDataPreprocessor: give both `mean` and `std` or neither')
        if mean is not None:
            self._enable_normalize = True
            self.register_buffer('mean', self._per_channel('mean', mean), False)
            self.register_buffer('std', self._per_channel('std', std), False)
            if (self.std <= 0).any():
                raise ValueError(f'MultiModalDataPreprocessor: `std` must be > 0, got {std!r}')
        flips = [bgr_to_rgb] + [False] * (len(channels) - 1) if isinstance(
            bgr_to_rgb, bool) else list(bgr_to_rgb)
        if len(flips) != len(channels):
            raise ValueError(f'MultiModalDataPreprocessor: `bgr_to_rgb` has {len(flips)} entries for '
                             f'{len(channels)} modalities (`modality_channels`={self.modality_channels})')
        order: List[int] = []
        for i, (c, flip) in enumerate(zip(channels, flips)):
            start = sum(channels[:i])
            if flip and c != 3:
                raise ValueError(f'MultiModalDataPreprocessor: `bgr_to_rgb` set for modality {i} which '
                                 f'has {c} channels; only 3-channel modalities can be flipped')
            group = list(range(start, start + c))
            order += group[::-1] if flip else group
        self._channel_order = order if order != sorted(order) else None

    def _per_channel(self, key: str, values: Sequence[Sequence[float]]) -> torch.Tensor:
        if len(values) != len(self.modality_channels):
            raise ValueError(f'MultiModalDataPreprocessor: `{key}` has {len(values)} groups but '
                             f'`modality_channels`={self.modality_channels} has '
                             f'{len(self.modality_channels)} modalities')
        flat: List[float] = []
        for i, (group, c) in enumerate(zip(values, self.modality_channels)):
            group = [group] if isinstance(group, (int, float)) else list(group)
            if len(group) == 1:
                group = group * c
            if len(group) != c:
                raise ValueError(f'MultiModalDataPreprocessor: `{key}[{i}]` has {len(group)} values '
                                 f'but modality {i} has {c} channels')
            flat += [float(v) for v in group]
        return torch.tensor(flat).view(-1, 1, 1)

    def _reorder(self, inputs: Union[torch.Tensor, List[torch.Tensor]]):
        tensors = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        for t in tensors:
            if t.shape[-3] != self.num_channels:
                raise ValueError(
                    f'MultiModalDataPreprocessor: input has {t.shape[-3]} channels but '
                    f'`modality_channels`={self.modality_channels} sums to {self.num_channels}; '
                    'check the loaded modalities/bands and that no transform dropped channels '
                    '(photometric transforms belong in ModalityTransform)')
        if self._channel_order is None:
            return inputs
        if isinstance(inputs, (list, tuple)):
            return [t[self._channel_order] for t in inputs]
        return inputs[:, self._channel_order]

    def forward(self, data: dict, training: bool = False) -> dict:
        data = dict(data, inputs=self._reorder(data['inputs']))
        return super().forward(data, training)
