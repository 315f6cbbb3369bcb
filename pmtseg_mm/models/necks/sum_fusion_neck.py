"""Fusion without TMSF for the Table IV ablation rows: summed backbone levels, one pixel decoder."""
from typing import List, Sequence, Tuple

from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule
from torch import Tensor

from ..utils import (SCALES, ModalityFeatures, build_pixel_decoder, check_modality_features,
                     check_neck_in_channels)


@MODELS.register_module()
class SumFusionNeck(BaseModule):
    """The "w/o TMSF" neck of Table IV: modalities fused by summing the backbone features level
    by level, then Mask2Former's single ``MSDeformAttnPixelDecoder``.

    TMSF (eq. 7-10) is one pixel decoder per modality plus the scale-matched fusion; removing it
    leaves the Mask2Former pipeline of the baseline - one pixel decoder - fed with the
    parameter-free sum F_R^l + F_S^l of the modalities' level-l features. The per-modality
    features stay separate up to that sum, so L_TMAA (eq. 2-6) still applies to them (the
    "+TMAA" row). With one modality or early-fused input (``DualBackbone`` with one channel
    group) this is exactly Mask2Former's pixel decoder on the backbone levels.

    Args:
        in_channels (Sequence[Sequence[int]]): Backbone channels of the 4 levels (strides 4, 8,
            16, 32) of each modality; every modality must give the same channels (they are
            summed).
        pixel_decoder (dict): mmdet ``MSDeformAttnPixelDecoder`` config (see
            :func:`~pmtseg_mm.models.utils.build_pixel_decoder`).
        num_modalities (int): Number of modalities M ≥ 1. Defaults to 2.
        out_channels (int): Channels of every output. Defaults to 256.
        init_cfg (dict, optional): Unused; the pixel decoder initialises itself.

    Forward returns ``(mask_feature, [F^1/32, F^1/16, F^1/8])``, TMSFNeck's output format.
    """

    def __init__(self,
                 in_channels: Sequence[Sequence[int]],
                 pixel_decoder: ConfigType,
                 num_modalities: int = 2,
                 out_channels: int = 256,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        channels = check_neck_in_channels(in_channels, num_modalities, 'SumFusionNeck')
        if any(c != channels[0] for c in channels):
            raise ValueError('SumFusionNeck: `in_channels` must give the same channels for every '
                             f'modality (they are summed), got {channels}')
        self.num_modalities = num_modalities
        self.in_channels = channels
        self.pixel_decoder = build_pixel_decoder(pixel_decoder, channels[0], out_channels,
                                                 'SumFusionNeck')

    def init_weights(self) -> None:
        """The pixel decoder initialises itself (mmdet's scheme)."""
        self.pixel_decoder.init_weights()

    def forward(self, modality_feats: ModalityFeatures) -> Tuple[Tensor, List[Tensor]]:
        """Per-modality backbone levels -> pixel-decoder output."""
        check_modality_features(modality_feats, 'SumFusionNeck')
        if len(modality_feats) != self.num_modalities:
            raise ValueError(f'SumFusionNeck: got features of {len(modality_feats)} modalities, '
                             f'expected {self.num_modalities} (`num_modalities`)')
        levels = []
        for level in range(len(SCALES)):
            maps = [feats[level] for feats in modality_feats
                    if len(feats) == len(SCALES)]
            if len(maps) != self.num_modalities or len({tuple(x.shape) for x in maps}) != 1:
                raise ValueError('SumFusionNeck: every modality must give 4 levels of equal '
                                 'shapes, got ' +
                                 str([[tuple(x.shape) for x in feats] for feats in modality_feats]))
            levels.append(sum(maps[1:], maps[0]))
        return self.pixel_decoder(levels)
