"""One backbone per modality (paper eq. 1: F_R = Backbone1(x_r), F_S = Backbone2(x_s))."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule, ModuleList
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from torch import Tensor, nn

#: ``None``: one pyramid per channel group; ``'early'``: the one group's pyramid; the others fuse
#: the pyramids of two or more groups into one.
FUSIONS = (None, 'early', 'sum', 'concat', 'gate')


def adapt_input_channels(state_dict: Dict[str, Tensor],
                         model_state: Dict[str, Tensor],
                         rgb_first: bool = True) -> Dict[str, Tensor]:
    """Adapt pretrained RGB input convolutions to the model's input channel count.

    A 4D weight whose shape differs from the model's only in the input-channel dimension
    (3 → C) is adapted:

    - C > 3 and ``rgb_first`` (an early-fusion group whose first three channels are the
      optical RGB bands): the pretrained RGB filters are kept as they are for channels 0-2 and
      each extra channel gets the RGB mean filter scaled by 3 / C;
    - otherwise (C < 3, e.g. a DSM alone, or no RGB in the group): the RGB mean repeated C
      times and scaled by 3 / C, so the response to a constant input is unchanged (C = 1
      gives the RGB sum).
    """
    adapted = dict(state_dict)
    for key, weight in state_dict.items():
        target = model_state.get(key)
        if (target is None or weight.dim() != 4 or weight.shape == target.shape
                or weight.shape[1] != 3 or weight.shape[0] != target.shape[0]
                or weight.shape[2:] != target.shape[2:]):
            continue
        channels = target.shape[1]
        mean = weight.mean(dim=1, keepdim=True) * (3.0 / channels)
        if rgb_first and channels > 3:
            adapted[key] = torch.cat([weight, mean.repeat(1, channels - 3, 1, 1)], dim=1)
        else:
            adapted[key] = mean.repeat(1, channels, 1, 1)
    return adapted


@MODELS.register_module()
class DualBackbone(BaseModule):
    """Split a (B, ΣC, H, W) modality stack by channel groups and run one backbone per group.

    Any mmdet/mmpretrain backbone works; its ``in_channels`` is set to the group's channel
    count. With pretrained RGB weights (``init_cfg=dict(type='Pretrained', ...)`` in the
    backbone config) the first convolution of a non-RGB group is adapted by
    :func:`adapt_input_channels` instead of being dropped as a shape mismatch: a group of
    more than 3 channels keeps the pretrained RGB filters for its first three channels when
    ``rgb_first`` says they are the optical RGB bands. The channel order of the stack is the
    order of ``modalities`` in ``LoadMultiModalImages`` (and of ``modality_channels`` in
    ``MultiModalDataPreprocessor``, which converts the optical BGR to RGB): list the optical
    modality first in an early-fusion group (``in_channels=(4,)`` for optical + depth).

    Args:
        backbones (list[dict] | dict): One config per modality, or one config used for all.
        in_channels (Sequence[int]): Channels per modality in stack order, e.g. (3, 1).
        share_weights (bool): Run one backbone for every group (all groups must have the same
            channel count). Defaults to False.
        fusion (str, optional): What ``forward`` returns, chosen here and never by the number
            of groups. ``None``: one pyramid per group, always a tuple of level tuples (for
            :class:`TMSFNeck`, :class:`SumFusionNeck`, :class:`TMAALoss`; a one-group tuple for
            single-modality ablations). ``'early'``: early fusion, the modalities already stacked
            in one group (``in_channels=(4,)``), whose pyramid is returned as it is, for stock
            necks and heads. For two or more groups, one pyramid from: ``'sum'`` (the levels
            added; equal channels needed), ``'concat'`` (each level concatenated and mapped with
            a 1x1 conv to ``fusion_channels``) or ``'gate'`` (a per-level, per-pixel softmax
            over a learned 1x1 conv of the concatenation; starts as the mean; equal channels
            needed). Defaults to None.
        fusion_channels (Sequence[int], optional): Output channels per level of ``'concat'``;
            defaults to the first modality's channels, so heads written for the single-modality
            backbone (e.g. UPerHead with [256, 512, 1024, 2048]) fit unchanged.
        rgb_first (bool | Sequence[bool]): Per group (or one for all): its first three
            channels are RGB, so a pretrained RGB first convolution keeps its filters for them
            when the group has more than 3 channels. Defaults to True.
        probe_size (int): Side of the zero image run once at build time to read each
            backbone's per-level channels when ``fusion`` is set. Defaults to 64.
        init_cfg (dict, optional): Initialisation config of the wrapper itself.

    Returns (forward):
        tuple[tuple[Tensor]] for ``fusion=None`` (``feats[m][level]``), else tuple[Tensor] (one
        pyramid).
    """

    def __init__(self,
                 backbones: Union[ConfigType, Sequence[ConfigType]],
                 in_channels: Sequence[int] = (3, 1),
                 share_weights: bool = False,
                 fusion: Optional[str] = None,
                 fusion_channels: Optional[Sequence[int]] = None,
                 rgb_first: Union[bool, Sequence[bool]] = True,
                 probe_size: int = 64,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = tuple(int(c) for c in in_channels)
        if not self.in_channels or min(self.in_channels) < 1:
            raise ValueError(f'DualBackbone: `in_channels` must be positive channel counts per '
                             f'modality, got {in_channels!r}')
        num = len(self.in_channels)
        cfgs = [copy.deepcopy(backbones) for _ in range(num)] if isinstance(
            backbones, dict) else [copy.deepcopy(c) for c in backbones]
        rgb_first = [rgb_first] * num if isinstance(rgb_first, bool) else list(rgb_first)
        if len(rgb_first) != num or any(not isinstance(r, bool) for r in rgb_first):
            raise ValueError(f'DualBackbone: `rgb_first` must be a bool or one bool per group '
                             f'(`in_channels`={self.in_channels}), got {rgb_first!r}')
        self.rgb_first = tuple(rgb_first)
        if len(cfgs) != num:
            raise ValueError(f'DualBackbone: {len(cfgs)} `backbones` configs for {num} modalities '
                             f'(`in_channels`={self.in_channels})')
        if share_weights and len(set(self.in_channels)) != 1:
            raise ValueError('DualBackbone: `share_weights=True` needs equal channel counts, got '
                             f'`in_channels`={self.in_channels}')
        self.share_weights = share_weights
        self.num_modalities = num
        self._pretrained: List[Optional[dict]] = []
        modules = []
        for i, cfg in enumerate(cfgs[:1] if share_weights else cfgs):
            given = cfg.get('in_channels')
            if given is not None and given != self.in_channels[i]:
                raise ValueError(f'DualBackbone: `backbones[{i}].in_channels`={given} but '
                                 f'`in_channels[{i}]`={self.in_channels[i]}')
            cfg['in_channels'] = self.in_channels[i]
            init = cfg.get('init_cfg')
            pretrained = init if isinstance(init, dict) and init.get('type') == 'Pretrained' else None
            if pretrained is not None and self.in_channels[i] != 3:
                cfg['init_cfg'] = None  # loaded with adapted first conv in init_weights
            else:
                pretrained = None
            self._pretrained.append(copy.deepcopy(pretrained))
            modules.append(MODELS.build(cfg))
        self.backbones = ModuleList(modules)
        if fusion not in FUSIONS:
            raise ValueError(f'DualBackbone: `fusion` must be one of {FUSIONS}, got {fusion!r}')
        if fusion == 'early' and num != 1:
            raise ValueError(f"DualBackbone: fusion='early' runs one backbone on the stacked "
                             f'modalities, so `in_channels` must be one group (e.g. '
                             f'({sum(self.in_channels)},)), got {self.in_channels}')
        if fusion in ('sum', 'concat', 'gate') and num == 1:
            raise ValueError(f'DualBackbone: fusion={fusion!r} fuses two or more channel groups, '
                             f'`in_channels`={self.in_channels} has one; write '
                             "fusion='early' for one pyramid of the stacked modalities")
        if fusion_channels is not None and fusion != 'concat':
            raise ValueError(f"DualBackbone: `fusion_channels` is only used by fusion='concat', "
                             f'got fusion={fusion!r}')
        self.fusion = fusion
        self.fusers = None
        self.out_channels: Optional[List[int]] = None
        if fusion in ('sum', 'concat', 'gate'):
            self._build_fusion(fusion_channels, probe_size)

    @torch.no_grad()
    def _probe_channels(self, probe_size: int) -> List[List[int]]:
        """Per-modality, per-level channel counts from one forward pass of a zero image."""
        channels = []
        for i, c in enumerate(self.in_channels):
            backbone = self.backbones[0 if self.share_weights else i]
            was_training = backbone.training
            backbone.eval()
            try:
                feats = backbone(torch.zeros(1, c, probe_size, probe_size))
            finally:
                backbone.train(was_training)
            channels.append([int(f.shape[1]) for f in feats])
        return channels

    def _build_fusion(self, fusion_channels: Optional[Sequence[int]], probe_size: int) -> None:
        level_channels = self._probe_channels(probe_size)
        num_levels = len(level_channels[0])
        if any(len(chs) != num_levels for chs in level_channels):
            raise ValueError(f'DualBackbone: fusion={self.fusion!r} needs the same number of '
                             f'levels from every backbone, got channels {level_channels}')
        if self.fusion in ('sum', 'gate') and any(chs != level_channels[0] for chs in level_channels):
            raise ValueError(f'DualBackbone: fusion={self.fusion!r} needs equal channels per level '
                             f'in every modality, got {level_channels}; use '
                             "fusion='concat' for backbones of different widths")
        if self.fusion == 'sum':
            self.out_channels = list(level_channels[0])
            return
        totals = [sum(chs[lv] for chs in level_channels) for lv in range(num_levels)]
        if self.fusion == 'gate':
            self.out_channels = list(level_channels[0])
            self.fusers = ModuleList(nn.Conv2d(t, self.num_modalities, 1) for t in totals)
            for conv in self.fusers:  # softmax of zeros: every modality weighs 1/M at the start
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
            return
        out = list(level_channels[0]) if fusion_channels is None else [int(c) for c in fusion_channels]
        if len(out) != num_levels or min(out) < 1:
            raise ValueError(f'DualBackbone: `fusion_channels` needs {num_levels} positive channel '
                             f'counts (one per level), got {fusion_channels!r}')
        self.out_channels = out
        self.fusers = ModuleList(nn.Conv2d(t, o, 1) for t, o in zip(totals, out))

    def init_weights(self) -> None:
        super().init_weights()
        for backbone, pretrained, rgb_first in zip(self.backbones, self._pretrained,
                                                   self.rgb_first):
            if pretrained is None:
                continue
            ckpt = CheckpointLoader.load_checkpoint(pretrained['checkpoint'], map_location='cpu')
            state = ckpt.get('state_dict', ckpt)
            prefix = pretrained.get('prefix')
            if prefix:
                prefix = prefix if prefix.endswith('.') else prefix + '.'
                state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            load_state_dict(backbone,
                            adapt_input_channels(state, backbone.state_dict(), rgb_first),
                            strict=False, logger='current')

    def forward_modalities(self, x: Tensor) -> Tuple[Tuple[Tensor, ...], ...]:
        """The multi-level features of each modality (before any fusion)."""
        if x.dim() != 4 or x.shape[1] != sum(self.in_channels):
            raise ValueError(f'DualBackbone: expected input (B, {sum(self.in_channels)}, H, W) for '
                             f'`in_channels`={self.in_channels}, got {tuple(x.shape)}')
        groups = torch.split(x, self.in_channels, dim=1)
        return tuple(
            tuple(self.backbones[0 if self.share_weights else i](g)) for i, g in enumerate(groups))

    def fuse(self, feats: Sequence[Sequence[Tensor]]) -> Tuple[Tensor, ...]:
        """One pyramid from the per-modality pyramids, as set by ``fusion``."""
        if self.fusion is None:
            raise ValueError('DualBackbone.fuse: `fusion` is None (per-modality features)')
        if self.fusion == 'early':
            return tuple(feats[0])
        fused = []
        for lv, levels in enumerate(zip(*feats)):
            if self.fusion == 'sum':
                fused.append(torch.stack(levels).sum(0))
            elif self.fusion == 'concat':
                fused.append(self.fusers[lv](torch.cat(levels, 1)))
            else:  # gate: (B, M, H, W) softmax weights over the modalities
                weights = self.fusers[lv](torch.cat(levels, 1)).softmax(1)
                fused.append(sum(w.unsqueeze(1) * f for w, f in zip(weights.unbind(1), levels)))
        return tuple(fused)

    def forward(self, x: Tensor) -> Union[Tuple[Tensor, ...], Tuple[Tuple[Tensor, ...], ...]]:
        feats = self.forward_modalities(x)
        return feats if self.fusion is None else self.fuse(feats)
