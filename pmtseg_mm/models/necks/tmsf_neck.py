"""Task-common multiscale semantic fusion (TMSF, paper sec. III-C, eq. 7-10, Fig. 3)."""
import copy
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention
from mmdet.models.layers import SinePositionalEncoding
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from ..losses.tmaa_loss import pooled_grid

SCALES = (4, 8, 16, 32)


def _mlp(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two-layer per-pixel MLP (1x1 convolutions with ReLU between)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1))


class CrossAttentionLayer(BaseModule):
    """Trans(q, k/v) of eq. 8/9: cross-attention + FFN, each with residual and LayerNorm.

    There is no self-attention among the queries: the queries are every pixel of the scale
    (16384 at 1/4 of a 512² input), and pixel-to-pixel self-attention would cost 16384² per head.
    """

    def __init__(self, channels: int, num_heads: int, ffn_channels: int, dropout: float) -> None:
        super().__init__()
        self.attn = MultiheadAttention(channels, num_heads, attn_drop=dropout, proj_drop=dropout,
                                       batch_first=True)
        self.norm1 = nn.LayerNorm(channels)
        self.ffn = FFN(channels, ffn_channels, num_fcs=2, ffn_drop=dropout,
                       act_cfg=dict(type='ReLU', inplace=True))
        self.norm2 = nn.LayerNorm(channels)

    def forward(self, query: Tensor, kv: Tensor, query_pos: Tensor, kv_pos: Tensor) -> Tensor:
        query = self.norm1(self.attn(query=query, key=kv, value=kv, query_pos=query_pos,
                                     key_pos=kv_pos))
        return self.norm2(self.ffn(query))


class ScaleFusion(BaseModule):
    """Scale-matched fusion SF at one scale (Fig. 3).

    F_J = MLP([F_R; F_S]) (eq. 7); F_m→J = Trans(q=F_J, kv=F_m) for each modality m (eq. 8, 9);
    F_T = MLP([F_R→J; F_S→J]) (eq. 10). Keys/values above ``max_kv_tokens`` are average-pooled
    to a grid of at most that many tokens (spatial-reduction attention as in PVT), so attention
    costs at most (H·W) × max_kv_tokens per head while the output keeps full resolution. With
    ``attend=False`` (a scale left out by ``scales``, Table IX) the fusion is F_T = F_J.
    """

    def __init__(self, channels: int, num_modalities: int, attend: bool, num_layers: int,
                 num_heads: int, ffn_channels: int, max_kv_tokens: int, dropout: float) -> None:
        super().__init__()
        self.max_kv_tokens = max_kv_tokens
        self.joint = _mlp(num_modalities * channels, channels)
        self.attend = attend
        if attend:
            self.positional_encoding = SinePositionalEncoding(channels // 2, normalize=True)
            self.trans = ModuleList(
                ModuleList(CrossAttentionLayer(channels, num_heads, ffn_channels, dropout)
                           for _ in range(num_layers)) for _ in range(num_modalities))
            self.out = _mlp(num_modalities * channels, channels)

    def _pos(self, feat: Tensor) -> Tensor:
        b, _, h, w = feat.shape
        mask = feat.new_zeros((b, h, w), dtype=torch.bool)
        return self.positional_encoding(mask).flatten(2).transpose(1, 2)

    def reduce_kv(self, feat: Tensor) -> Tensor:
        """Key/value map with at most ``max_kv_tokens`` positions."""
        grid = pooled_grid(feat.shape[2], feat.shape[3], self.max_kv_tokens)
        return feat if grid == tuple(feat.shape[2:]) else F.adaptive_avg_pool2d(feat, grid)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        joint = self.joint(torch.cat(list(feats), dim=1))
        if not self.attend:
            return joint
        b, c, h, w = joint.shape
        query = joint.flatten(2).transpose(1, 2)
        query_pos = self._pos(joint)
        enhanced: List[Tensor] = []
        for feat, layers in zip(feats, self.trans):
            kv_map = self.reduce_kv(feat)
            kv, kv_pos = kv_map.flatten(2).transpose(1, 2), self._pos(kv_map)
            out = query
            for layer in layers:
                out = layer(out, kv, query_pos, kv_pos)
            enhanced.append(out.transpose(1, 2).reshape(b, c, h, w))
        return self.out(torch.cat(enhanced, dim=1))


@MODELS.register_module()
class TMSFNeck(BaseModule):
    """One MSDeformAttn pixel decoder per modality, then a :class:`ScaleFusion` per scale.

    Args:
        in_channels (Sequence[Sequence[int]]): Backbone channels of each modality, e.g.
            ``[[256, 512, 1024, 2048]] * 2``.
        pixel_decoder (dict): mmdet ``MSDeformAttnPixelDecoder`` config, deep-copied per modality
            (its ``in_channels``, ``strides``, ``feat_channels``, ``out_channels`` are set here).
        num_modalities (int): Defaults to 2.
        out_channels (int): Channels of every output. Defaults to 256.
        scales (Sequence[int]): Strides fused with cross-attention (Table IX); the others use the
            joint MLP only. Defaults to (4, 8, 16, 32).
        num_layers (int): Cross-attention layers per modality and scale (Table VII). Defaults to 1.
        num_heads (int): Attention heads. Defaults to 8.
        ffn_channels (int): FFN hidden channels. Defaults to 1024.
        max_kv_tokens (int): Key/value token budget per attention. Defaults to 1024.
        dropout (float): Attention/FFN dropout. Defaults to 0.

    Returns (forward):
        tuple: ``(mask_feature, [F_T^1/32, F_T^1/16, F_T^1/8])``, the output format of
        ``MSDeformAttnPixelDecoder.forward``, so Mask2Former-style heads consume it.
    """

    def __init__(self,
                 in_channels: Sequence[Sequence[int]],
                 pixel_decoder: ConfigType,
                 num_modalities: int = 2,
                 out_channels: int = 256,
                 scales: Sequence[int] = SCALES,
                 num_layers: int = 1,
                 num_heads: int = 8,
                 ffn_channels: int = 1024,
                 max_kv_tokens: int = 1024,
                 dropout: float = 0.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_modalities < 2:
            raise ValueError(f'TMSFNeck: `num_modalities` must be >= 2, got {num_modalities}')
        if len(in_channels) != num_modalities:
            raise ValueError(f'TMSFNeck: `in_channels` lists {len(in_channels)} modalities but '
                             f'`num_modalities`={num_modalities}')
        if not scales or not set(scales) <= set(SCALES) or len(set(scales)) != len(scales):
            raise ValueError(f'TMSFNeck: `scales` must be distinct strides from {SCALES}, got '
                             f'{tuple(scales)}')
        if num_layers < 1:
            raise ValueError(f'TMSFNeck: `num_layers` must be >= 1, got {num_layers}')
        if max_kv_tokens < 1:
            raise ValueError(f'TMSFNeck: `max_kv_tokens` must be >= 1, got {max_kv_tokens}')
        self.num_modalities = num_modalities
        self.in_channels = [list(c) for c in in_channels]
        self.scales = tuple(scales)
        decoders = []
        for channels in self.in_channels:
            cfg = ConfigDict(copy.deepcopy(dict(pixel_decoder)))
            for key in ('feat_channels', 'out_channels'):
                if cfg.get(key, out_channels) != out_channels:
                    raise ValueError(f'TMSFNeck: `pixel_decoder.{key}`={cfg[key]} must equal '
                                     f'`out_channels`={out_channels}')
            cfg.update(in_channels=channels, strides=list(SCALES), feat_channels=out_channels,
                       out_channels=out_channels)
            decoders.append(MODELS.build(cfg))
        self.pixel_decoders = ModuleList(decoders)
        self.fusions = ModuleList(
            ScaleFusion(out_channels, num_modalities, s in self.scales, num_layers, num_heads,
                        ffn_channels, max_kv_tokens, dropout) for s in SCALES)

    def init_weights(self) -> None:
        super().init_weights()  # pixel decoders initialise themselves
        for fusion in self.fusions:
            for m in fusion.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.xavier_uniform_(m.weight)
                    nn.init.zeros_(m.bias)

    def forward(self, modality_feats: Sequence[Sequence[Tensor]]) -> Tuple[Tensor, List[Tensor]]:
        if len(modality_feats) != self.num_modalities:
            raise ValueError(f'TMSFNeck: got features of {len(modality_feats)} modalities, '
                             f'expected {self.num_modalities} (use DualBackbone with one '
                             'channel group per modality)')
        per_scale: List[List[Tensor]] = [[] for _ in SCALES]
        for feats, decoder, channels in zip(modality_feats, self.pixel_decoders,
                                            self.in_channels):
            if len(feats) != len(channels):
                raise ValueError(f'TMSFNeck: a modality gave {len(feats)} feature levels, '
                                 f'expected {len(channels)} (`in_channels`)')
            mask_feature, multi_scale = decoder(feats)  # multi_scale: 1/32, 1/16, 1/8
            for i, feat in enumerate([mask_feature] + multi_scale[::-1]):
                per_scale[i].append(feat)
        fused = [fusion(feats) for fusion, feats in zip(self.fusions, per_scale)]
        return fused[0], fused[:0:-1]
