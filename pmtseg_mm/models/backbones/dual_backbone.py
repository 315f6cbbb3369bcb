"""One backbone per modality (paper eq. 1: F_R = Backbone1(x_r), F_S = Backbone2(x_s))."""
import copy
import os.path as osp
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.model import BaseModule, ModuleList
from mmengine.runner.checkpoint import CheckpointLoader
from torch import Tensor, nn

#: ``None``: one pyramid per channel group; ``'early'``: the one group's pyramid; the others fuse
#: the pyramids of two or more groups into one.
FUSIONS = (None, 'early', 'sum', 'concat', 'gate')


def adapt_rgb_weight(weight: Tensor, channels: int, rgb_first: bool = True) -> Tensor:
    """A pretrained RGB input weight (O, 3, kH, kW) adapted to ``channels`` input channels.

    - ``channels`` > 3 and ``rgb_first`` (a group whose first three channels are the optical RGB
      bands): the RGB filters are kept as they are for channels 0-2 and each extra channel gets
      the RGB mean filter scaled by 3 / C;
    - otherwise (C < 3, e.g. a DSM alone, or no RGB in the group): the RGB mean repeated C times
      and scaled by 3 / C, so the response to a constant input is unchanged (C = 1 gives the RGB
      sum).
    """
    mean = weight.mean(dim=1, keepdim=True) * (3.0 / channels)
    if rgb_first and channels > 3:
        return torch.cat([weight, mean.repeat(1, channels - 3, 1, 1)], dim=1)
    return mean.repeat(1, channels, 1, 1)


def adapt_input_channels(state_dict: Dict[str, Tensor],
                         model_state: Dict[str, Tensor],
                         rgb_first: bool = True,
                         in_channels: Optional[int] = None) -> Dict[str, Tensor]:
    """Adapt the pretrained RGB first layer(s) of ``state_dict`` to the model's input channels.

    Found by shape, not by name: a 4D weight of 3 input channels (ResNet's ``conv1``, the patch
    embedding of Swin and ViT, ConvNeXt's stem) goes to the model's 4D weight of the same name
    when that has the same output channels and kernel, else to the model's 4D weights of the same
    output channels and kernel and C != 3 input channels (C = ``in_channels`` when given), when
    they agree on one C. It is then replaced by :func:`adapt_rgb_weight` (3 → C); every other
    entry is kept as it is (the same tensor).
    """
    targets = [v.shape for v in model_state.values()
               if v.dim() == 4 and v.shape[1] != 3
               and (in_channels is None or v.shape[1] == in_channels)]
    adapted = dict(state_dict)
    for key, weight in state_dict.items():
        if not isinstance(weight, Tensor) or weight.dim() != 4 or weight.shape[1] != 3:
            continue
        same = model_state.get(key)
        if (same is not None and same.dim() == 4 and same.shape[0] == weight.shape[0]
                and same.shape[2:] == weight.shape[2:]):
            found = {same.shape[1]}
        else:
            found = {t[1] for t in targets
                     if t[0] == weight.shape[0] and t[2:] == weight.shape[2:]}
        if len(found) == 1 and 3 not in found:
            adapted[key] = adapt_rgb_weight(weight, found.pop(), rgb_first)
    return adapted


def checkpoint_state(checkpoint: dict) -> Dict[str, Tensor]:
    """The weights of a loaded checkpoint: its ``state_dict`` or ``model`` entry (official Swin
    and ConvNeXt releases), else the checkpoint itself, as mmengine and mmdet read them."""
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


@MODELS.register_module()
class DualBackbone(BaseModule):
    """Split a (B, ΣC, H, W) modality stack by channel groups and run one backbone per group.

    Any mmdet/mmpretrain backbone with an ``in_channels`` argument works (ResNet and
    SwinTransformer of mmdet; ``mmpretrain.ConvNeXt``, ``mmpretrain.VisionTransformer``..., which
    need torchvision: docs/install.md); its ``in_channels`` is set to the group's channel count.
    With pretrained RGB weights (``init_cfg=dict(type='Pretrained', ...)`` in the backbone config)
    the backbone loads them itself (with its own key conversions) from a copy of the checkpoint
    whose first layer :func:`adapt_input_channels` adapted to the group's channels (found by
    shape: ResNet's ``conv1``, a Swin/ViT patch embedding, ConvNeXt's stem), instead of dropping
    it as a shape mismatch: a group of more than 3 channels keeps the pretrained RGB filters for
    its first three channels when ``rgb_first`` says they are the optical RGB bands. The
    channel order of the stack is the order of ``modalities`` in ``LoadMultiModalImages`` (and
    of ``modality_channels`` in ``MultiModalDataPreprocessor``, which converts the optical BGR
    to RGB): list the optical modality first in an early-fusion group (``in_channels=(4,)`` for
    optical + depth).

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
        # one copy per group; ConfigDict: mmdet's SwinTransformer reads `init_cfg.checkpoint`
        cfgs = [ConfigDict(copy.deepcopy(backbones)) for _ in range(num)] if isinstance(
            backbones, dict) else [ConfigDict(copy.deepcopy(c)) for c in backbones]
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
            # a non-RGB group's pretrained RGB first layer is adapted in init_weights
            adapt = (isinstance(init, dict) and init.get('type') == 'Pretrained'
                     and self.in_channels[i] != 3)
            self._pretrained.append(copy.deepcopy(init) if adapt else None)
            modules.append(self._build_backbone(cfg, i))
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

    @staticmethod
    def _build_backbone(cfg: ConfigType, index: int) -> nn.Module:
        """``MODELS.build(cfg)``, with one error naming the key when an ``mmpretrain.*`` type
        cannot be imported for want of torchvision."""
        try:
            return MODELS.build(cfg)
        except ModuleNotFoundError as exc:
            if exc.name != 'torchvision':
                raise
            raise ModuleNotFoundError(
                f'DualBackbone: `backbones[{index}].type`={cfg.get("type")!r} needs torchvision '
                '(mmpretrain imports it), which is not installed: `PMTSEG_TORCHVISION=1 bash '
                'tools/install.sh` installs the torch + torchvision pair of '
                'requirements/torchvision.txt (docs/install.md)', name='torchvision') from exc

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
        """Initialise the backbones; each non-RGB group with pretrained RGB weights loads them,
        through its own ``init_weights``, from a temporary copy of the checkpoint whose first
        layer is adapted to the group's channels (:meth:`_adapted_checkpoint`)."""
        pretrained = [(b, p, i) for i, (b, p) in enumerate(zip(self.backbones, self._pretrained))
                      if p is not None]
        if not pretrained:
            super().init_weights()
            return
        with tempfile.TemporaryDirectory(prefix='pmtseg_adapted_') as tmp:
            for backbone, init, i in pretrained:
                backbone.init_cfg = ConfigDict(
                    init, checkpoint=self._adapted_checkpoint(i, backbone, init, tmp))
            try:
                super().init_weights()
            finally:
                for backbone, init, _ in pretrained:
                    backbone.init_cfg = ConfigDict(init)

    def _adapted_checkpoint(self, index: int, backbone: nn.Module, init: dict,
                            folder: str) -> str:
        """Save ``init['checkpoint']`` with its RGB first layer adapted to group ``index``'s
        channels into ``folder`` (a checkpoint already of that channel count is used as it is);
        raise when no first layer of the checkpoint fits the backbone."""
        channels = self.in_channels[index]
        checkpoint = CheckpointLoader.load_checkpoint(init['checkpoint'], map_location='cpu')
        state = checkpoint_state(checkpoint)
        prefix = init.get('prefix') or ''
        prefix = prefix if not prefix or prefix.endswith('.') else prefix + '.'
        inside = {k: v for k, v in state.items() if k.startswith(prefix)}
        adapted = adapt_input_channels(inside, backbone.state_dict(), self.rgb_first[index],
                                       in_channels=channels)
        if all(adapted[k] is v for k, v in inside.items()):
            shapes = {tuple(v.shape) for v in inside.values()
                      if isinstance(v, Tensor) and v.dim() == 4}
            rgb = sorted(s for s in shapes if s[1] == 3)
            wanted = sorted({tuple(v.shape) for v in backbone.state_dict().values()
                             if v.dim() == 4 and v.shape[1] == channels})
            if not rgb and wanted and set(wanted) <= shapes:
                return init['checkpoint']  # already made for this channel count: as it is
            raise ValueError(
                f'DualBackbone: the pretrained first layer of `backbones[{index}].init_cfg`'
                f'.checkpoint={init["checkpoint"]!r} cannot be adapted to `in_channels[{index}]`'
                f'={channels}: its 4D weights of 3 input channels {rgb or "(none)"}'
                f'{"" if not prefix else f" under prefix {prefix!r}"} match no '
                f'{channels}-channel weight of the backbone by output channels and kernel '
                f'{wanted}; give a checkpoint of this architecture, or init_cfg=None')
        state.update(adapted)
        path = osp.join(folder, f'backbone{index}.pth')
        torch.save(checkpoint, path)
        return path

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
