"""Per-modality normalisation for channel-stacked multimodal images."""
from typing import List, Optional, Sequence, Union

import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmengine.logging import print_log

from pmtseg_mm.structures import channel_slices


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
        check_finite (bool): Raise, naming the samples' files and modalities, when the batch
            holds NaN/±Inf after normalisation (training and testing). Defaults to True.
        warn_abs_above (float, optional): Warn once when a normalised input exceeds this
            magnitude (e.g. 16-bit images under 8-bit statistics reach thousands). None
            disables the warning. Defaults to 100.
        max_median_std (float, optional): Refuse a sample whose median in a modality (over its
            channels and unpadded pixels) lies more than this many std from the modality's
            mean, naming the file: data of another kind than the statistics describe, e.g. an
            absolute DSM (~150 m above sea level) under the statistics of a normalised DSM
            (heights above ground). Needs ``mean``/``std``; None disables it. Defaults to 5.
        **kwargs: Other :class:`DetDataPreprocessor` arguments (pad_size_divisor, pad_mask,
            pad_seg, seg_pad_value, batch_augments, ...).
    """

    def __init__(self,
                 modality_channels: Sequence[int],
                 mean: Optional[Sequence[Sequence[float]]] = None,
                 std: Optional[Sequence[Sequence[float]]] = None,
                 bgr_to_rgb: Union[bool, Sequence[bool]] = False,
                 check_finite: bool = True,
                 warn_abs_above: Optional[float] = 100.,
                 max_median_std: Optional[float] = 5.,
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
        for i, (c, flip, group) in enumerate(zip(channels, flips, channel_slices(channels))):
            if flip and c != 3:
                raise ValueError(f'MultiModalDataPreprocessor: `bgr_to_rgb` set for modality {i} which '
                                 f'has {c} channels; only 3-channel modalities can be flipped')
            group = list(range(group.start, group.stop))
            order += group[::-1] if flip else group
        self._channel_order = order if order != sorted(order) else None
        if max_median_std is not None and not max_median_std > 0:
            raise ValueError('MultiModalDataPreprocessor: `max_median_std` must be > 0 or None, '
                             f'got {max_median_std!r}')
        self.max_median_std = max_median_std if mean is not None else None
        if warn_abs_above is not None and not warn_abs_above > 0:
            raise ValueError('MultiModalDataPreprocessor: `warn_abs_above` must be > 0 or None, '
                             f'got {warn_abs_above!r}')
        self.check_finite = check_finite
        self.warn_abs_above = warn_abs_above
        self._warned_range = False

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

    def _groups(self):
        """(modality index, channel slice) per channel group."""
        return enumerate(channel_slices(self.modality_channels))

    @staticmethod
    def _describe(data_samples, index: int, group: int) -> str:
        if not data_samples:
            return f'sample {index}, modality {group}'
        meta = data_samples[index].metainfo
        names = meta.get('modalities')
        name = names[group] if names and group < len(names) else f'#{group}'
        paths = meta.get('modality_paths') or {}
        where = paths.get(name) or meta.get('img_path', f'sample {index}')
        return f"modality '{name}' of {where}"

    def _check_batch(self, inputs: torch.Tensor, data_samples) -> None:
        if self.check_finite:
            bad = []
            for group, sl in self._groups():
                finite = torch.isfinite(inputs[:, sl]).flatten(1).all(1)
                bad += [self._describe(data_samples, int(i), group)
                        for i in torch.nonzero(~finite).flatten()]
            if bad:
                raise ValueError(
                    'MultiModalDataPreprocessor: non-finite (NaN/Inf) inputs after normalisation in '
                    + '; '.join(bad) + '. Fix the files or map the values with '
                    'LoadMultiModalImages `modalities.<name>.nan_value`/`inf_value`; check that '
                    '`std` has no tiny values')
        if self.max_median_std is not None and inputs.numel():
            self._check_medians(inputs, data_samples)
        if self.warn_abs_above is not None and not self._warned_range and inputs.numel():
            for group, sl in self._groups():
                peak = float(inputs[:, sl].detach().abs().max())
                if peak > self.warn_abs_above:
                    index = int(inputs[:, sl].detach().abs().flatten(1).max(1).values.argmax())
                    self._warned_range = True
                    print_log(
                        f'MultiModalDataPreprocessor: normalised inputs reach {peak:.4g} in '
                        f'{self._describe(data_samples, index, group)} (above '
                        f'`warn_abs_above`={self.warn_abs_above:g}): the data do not match the '
                        '`mean`/`std` of this modality (e.g. 16-bit images under 8-bit '
                        'statistics); set `dtype`/`value_range` in LoadMultiModalImages to stop on '
                        'such files. Warned once.', logger='current', level=30)
                    break

    def _check_medians(self, inputs: torch.Tensor, data_samples) -> None:
        """Refuse samples whose per-modality median is beyond ``max_median_std`` (normalised
        values are in std units from the mean)."""
        for index in range(inputs.shape[0]):
            h, w = (data_samples[index].img_shape if data_samples else inputs.shape[-2:])
            for group, sl in self._groups():
                median = float(inputs[index, sl, :h, :w].detach().median())
                if abs(median) > self.max_median_std:
                    raise ValueError(
                        f'MultiModalDataPreprocessor: the median of '
                        f'{self._describe(data_samples, index, group)} lies {median:+.3g} std from '
                        f'the mean of this modality\'s statistics (`max_median_std`='
                        f'{self.max_median_std:g}): these are not the data the statistics '
                        'describe. An absolute DSM (heights above sea level) fed to a model of '
                        'heights above ground needs a normalised DSM first: nDSM = DSM - DTM (a '
                        'terrain model, e.g. from GDAL/WhiteboxTools ground filtering, or a '
                        'per-tile low percentile of the DSM as a rough DTM). Otherwise compute '
                        'mean/std for these data (modality_stats.json of the converters) or '
                        'raise `model.data_preprocessor.max_median_std`')

    def _check_layout(self, data_samples) -> None:
        """The loaded stack's channel groups must be the ones the statistics are for."""
        for sample in data_samples or []:
            loaded = sample.metainfo.get('modality_channels')
            if loaded is not None and tuple(loaded) != self.modality_channels:
                names = tuple(sample.metainfo.get('modalities', ()))
                raise ValueError(
                    f'MultiModalDataPreprocessor: the sample {sample.metainfo.get("img_path")} '
                    f'stacks the modalities {names} with channels {tuple(loaded)}, but '
                    f'`modality_channels`={self.modality_channels} (and mean/std) are for another '
                    'order. The stack follows the order of LoadMultiModalImages `modalities`; '
                    'a config dumped by mmengine (e.g. the copy in work_dir) has its dict keys '
                    'sorted: give the loader `order=[...]` or use the original config')

    def forward(self, data: dict, training: bool = False) -> dict:
        self._check_layout(data.get('data_samples'))
        data = dict(data, inputs=self._reorder(data['inputs']))
        out = super().forward(data, training)
        self._check_batch(out['inputs'], out.get('data_samples'))
        return out
