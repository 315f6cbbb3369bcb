"""One backbone per modality (paper eq. 1: F_R = Backbone1(x_r), F_S = Backbone2(x_s))."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule, ModuleList
from mmengine.runner.checkpoint import CheckpointLoader, load_state_dict
from torch import Tensor


def adapt_input_channels(state_dict: Dict[str, Tensor],
                         model_state: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Adapt pretrained RGB input convolutions to the model's input channel count.

    A 4D weight whose shape differs from the model's only in the input-channel dimension
    (3 → C) is replaced by the RGB mean repeated C times and scaled by 3 / C, so the response
    to a constant input is unchanged (C = 1 gives the RGB sum).
    """
    adapted = dict(state_dict)
    for key, weight in state_dict.items():
        target = model_state.get(key)
        if (target is None or weight.dim() != 4 or weight.shape == target.shape
                or weight.shape[1] != 3 or weight.shape[0] != target.shape[0]
                or weight.shape[2:] != target.shape[2:]):
            continue
        channels = target.shape[1]
        adapted[key] = weight.mean(dim=1, keepdim=True).repeat(1, channels, 1, 1) * (3.0 / channels)
    return adapted


@MODELS.register_module()
class DualBackbone(BaseModule):
    """Split a (B, ΣC, H, W) modality stack by channel groups and run one backbone per group.

    Any mmdet/mmpretrain backbone works; its ``in_channels`` is set to the group's channel
    count. With pretrained RGB weights (``init_cfg=dict(type='Pretrained', ...)`` in the
    backbone config) the first convolution of a non-RGB group is adapted by
    :func:`adapt_input_channels` instead of being dropped as a shape mismatch.

    Args:
        backbones (list[dict] | dict): One config per modality, or one config used for all.
        in_channels (Sequence[int]): Channels per modality in stack order, e.g. (3, 1).
        share_weights (bool): Run one backbone for every group (all groups must have the same
            channel count). Defaults to False.
        init_cfg (dict, optional): Initialisation config of the wrapper itself.

    Returns (forward):
        tuple[tuple[Tensor]]: the multi-level features of each modality. With a single group
        (early fusion: ``in_channels=(4,)``) the backbone's own tuple is returned, so stock
        necks and heads consume it.
    """

    def __init__(self,
                 backbones: Union[ConfigType, Sequence[ConfigType]],
                 in_channels: Sequence[int] = (3, 1),
                 share_weights: bool = False,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = tuple(int(c) for c in in_channels)
        if not self.in_channels or min(self.in_channels) < 1:
            raise ValueError(f'DualBackbone: `in_channels` must be positive channel counts per '
                             f'modality, got {in_channels!r}')
        num = len(self.in_channels)
        cfgs = [copy.deepcopy(backbones)] * num if isinstance(backbones, dict) else [
            copy.deepcopy(c) for c in backbones
        ]
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

    def init_weights(self) -> None:
        super().init_weights()
        for backbone, pretrained in zip(self.backbones, self._pretrained):
            if pretrained is None:
                continue
            ckpt = CheckpointLoader.load_checkpoint(pretrained['checkpoint'], map_location='cpu')
            state = ckpt.get('state_dict', ckpt)
            prefix = pretrained.get('prefix')
            if prefix:
                prefix = prefix if prefix.endswith('.') else prefix + '.'
                state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            load_state_dict(backbone, adapt_input_channels(state, backbone.state_dict()),
                            strict=False, logger='current')

    def forward(self, x: Tensor) -> Union[Tuple[Tensor, ...], Tuple[Tuple[Tensor, ...], ...]]:
        if x.dim() != 4 or x.shape[1] != sum(self.in_channels):
            raise ValueError(f'DualBackbone: expected input (B, {sum(self.in_channels)}, H, W) for '
                             f'`in_channels`={self.in_channels}, got {tuple(x.shape)}')
        groups = torch.split(x, self.in_channels, dim=1)
        feats = tuple(
            tuple(self.backbones[0 if self.share_weights else i](g)) for i, g in enumerate(groups))
        return feats[0] if self.num_modalities == 1 else feats
