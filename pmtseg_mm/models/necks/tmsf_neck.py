"""Task-common multiscale semantic fusion (TMSF, paper sec. III-C, eq. 7-10, Fig. 3)."""
from typing import Dict, List, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks.transformer import FFN
from mmdet.models.layers import SinePositionalEncoding
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptMultiConfig
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from ..utils import (SCALES, ModalityFeatures, build_pixel_decoder, check_modality_features,
                     check_neck_in_channels, pooled_grid)


def _mlp(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two-layer per-pixel MLP (1x1 convolutions, ReLU between) of eq. 7 and eq. 10."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 1))


def _mlp_on_tokens(mlp: nn.Sequential, tokens: Tensor) -> Tensor:
    """A :func:`_mlp` applied to (B, L, C_in) tokens: its 1x1 convolutions as linear layers."""
    first, act, second = mlp
    hidden = act(F.linear(tokens, first.weight.flatten(1), first.bias))
    return F.linear(hidden, second.weight.flatten(1), second.bias)


def _tokens(feat: Tensor) -> Tensor:
    """(B, C, h, w) map -> (B, h·w, C) tokens (a view)."""
    return feat.flatten(2).transpose(1, 2)


class CrossAttentionLayer(BaseModule):
    """One layer of Trans(q, k/v) (eq. 8/9): cross-attention then FFN, each post-norm residual.

    There is no self-attention among the queries: they are every pixel of the scale (16384 at
    1/4 of a 512² input), so pixel-to-pixel self-attention would cost 16384² per head; mixing
    among pixels already happens in the pixel decoders and through the shared keys/values.

    The attention holds a ``torch.nn.MultiheadAttention`` (what mmcv's ``MultiheadAttention``
    wraps; its parameters and state-dict keys) but is computed by :meth:`attend`: the module's own
    projections around ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels, memory
    growing with H·W + S rather than H·W · S), without the module's (L, B, C) transposes and copies.
    """

    def __init__(self, channels: int, num_heads: int, ffn_channels: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(channels, num_heads, dropout=dropout, batch_first=True)
        self.proj_drop = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(channels)
        self.ffn = FFN(channels, ffn_channels, num_fcs=2, ffn_drop=dropout,
                       act_cfg=dict(type='ReLU', inplace=True))
        self.norm2 = nn.LayerNorm(channels)

    def attend(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """``self.attn(query, key, value, need_weights=False)[0]`` for (B, L, C) / (B, S, C)."""
        attn = self.attn
        w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
        b_q, b_k, b_v = attn.in_proj_bias.chunk(3)

        def heads(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # (B, heads, L, C/heads)
            return F.linear(x, weight, bias).unflatten(-1, (attn.num_heads, -1)).transpose(1, 2)

        out = F.scaled_dot_product_attention(
            heads(query, w_q, b_q), heads(key, w_k, b_k), heads(value, w_v, b_v),
            dropout_p=attn.dropout if self.training else 0.0)
        return attn.out_proj(out.transpose(1, 2).flatten(2))

    def forward(self, query: Tensor, kv: Tensor, query_pos: Tensor, kv_pos: Tensor) -> Tensor:
        """(B, L, C) queries attend to (B, S, C) keys/values; returns (B, L, C)."""
        out = self.attend(query + query_pos, kv + kv_pos, kv)
        query = self.norm1(query + self.proj_drop(out))
        return self.norm2(self.ffn(query))


class ScaleFusion(BaseModule):
    """Scale-matched fusion SF at one scale (Fig. 3), for any number M ≥ 2 of modalities.

    F_J = MLP([F_1; ...; F_M]) (eq. 7); F_m→J = Trans(q=F_J, k/v=F_m), one stack of
    ``num_layers`` :class:`CrossAttentionLayer` per modality (eq. 8, 9); F_T =
    MLP([F_1→J; ...; F_M→J]) (eq. 10). With ``attend=False`` (a scale left out of
    ``TMSFNeck.scales``, Table IX) the fusion is the joint MLP only: F_T = F_J.

    Bounded attention memory (PVT-style spatial-reduction attention): a key/value map with more
    than ``max_kv_tokens`` positions is adaptive-average-pooled to the :func:`~pmtseg_mm.models.utils.pooled_grid` grid
    (≤ ``max_kv_tokens`` tokens, aspect ratio kept) and gets the sine positional encoding of that
    reduced grid. The encoding is normalised to [0, 2π] over each map, so a pooled cell and the
    full-resolution query pixels it covers get matching positions. Queries stay at full
    resolution, so F_T keeps the scale's resolution, and the attention costs
    O(H·W · max_kv_tokens · C) time per head (16384 × 1024 at 1/4 of a 512² input with the
    default budget, instead of 16384²).

    Everything runs on (B, H·W, C) tokens (the MLPs' 1x1 convolutions as linear layers), and the
    encodings, which depend on the grid size only, are computed once per grid and kept.
    """

    #: Grid sizes whose positional encodings are kept (a scale sees two: queries and keys).
    _POS_CACHE_SIZE = 4

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
        self._pos_cache: Dict[tuple, Tensor] = {}

    def position(self, height: int, width: int, like: Tensor) -> Tensor:
        """(1, height·width, C) sine positional encoding of a height × width grid."""
        key = (height, width, like.device, like.dtype)
        if key not in self._pos_cache:
            if len(self._pos_cache) >= self._POS_CACHE_SIZE:
                self._pos_cache.pop(next(iter(self._pos_cache)))
            pos = self.positional_encoding(mask=None, input=like.new_empty(1, 0, height, width))
            self._pos_cache[key] = _tokens(pos).to(like.dtype).contiguous()
        return self._pos_cache[key]

    def reduce_kv(self, feat: Tensor) -> Tensor:
        """Key/value map pooled to at most ``max_kv_tokens`` positions (see :func:`~pmtseg_mm.models.utils.pooled_grid`)."""
        grid = pooled_grid(feat.shape[2], feat.shape[3], self.max_kv_tokens)
        return feat if grid == tuple(feat.shape[2:]) else F.adaptive_avg_pool2d(feat, grid)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Fuse M same-shape (B, C, H, W) maps into F_T (B, C, H, W)."""
        if any(f.shape != feats[0].shape for f in feats[1:]):
            raise ValueError('ScaleFusion: all modalities must give the same (B, C, H, W) at a '
                             f'scale, got {[tuple(f.shape) for f in feats]}')
        b, c, h, w = feats[0].shape
        joint = _mlp_on_tokens(self.joint, torch.cat([_tokens(f) for f in feats], dim=-1))
        if self.attend:
            query_pos = self.position(h, w, joint)
            enhanced: List[Tensor] = []
            for feat, layers in zip(feats, self.trans):
                kv_map = self.reduce_kv(feat)
                kv, kv_pos = _tokens(kv_map), self.position(*kv_map.shape[2:], joint)
                out = joint
                for layer in layers:
                    out = layer(out, kv, query_pos, kv_pos)
                enhanced.append(out)
            joint = _mlp_on_tokens(self.out, torch.cat(enhanced, dim=-1))
        return joint.transpose(1, 2).reshape(b, c, h, w).contiguous()  # NCHW, as pixel decoders


@MODELS.register_module()
class TMSFNeck(BaseModule):
    """TMSF: one MSDeformAttn pixel decoder per modality, then a :class:`ScaleFusion` per scale.

    Each modality's pixel decoder gives 4 scales (its 1/4 mask feature and its 1/8, 1/16, 1/32
    outputs); the modalities are fused scale by scale (eq. 7-10). With one modality (Table VIII
    single-modality rows) there is nothing to fuse: its pixel-decoder output passes through.

    Args:
        in_channels (Sequence[Sequence[int]]): Backbone channels of the 4 levels (strides 4, 8,
            16, 32) of each modality, e.g. ``[[256, 512, 1024, 2048]] * 2``.
        pixel_decoder (dict): mmdet ``MSDeformAttnPixelDecoder`` config, deep-copied per modality
            with that modality's ``in_channels``; ``strides``, ``feat_channels``,
            ``out_channels`` and ``num_outs`` are set to (4, 8, 16, 32), ``out_channels``,
            ``out_channels`` and 3 (a config giving other values is an error). ``encoder.num_layers``
            (≥ 1; Mask2Former uses 6) sets the encoder depth, and
            ``type='FastMSDeformAttnPixelDecoder'`` the faster CPU deformable attention with the
            same parameters (:mod:`pmtseg_mm.models.layers.ms_deform_attn`).
        num_modalities (int): Number of modalities M ≥ 1 (1: no fusion, see above).
            Defaults to 2.
        out_channels (int): Channels of every output; even and divisible by ``num_heads``.
            Defaults to 256.
        scales (Sequence[int]): Strides fused with cross-attention (Table IX); the other scales
            are fused by the joint MLP only (F_T = F_J); unused with one modality.
            Defaults to (4, 8, 16, 32).
        num_layers (int): Cross-attention layers per modality and scale (Table VII).
            Defaults to 1.
        num_heads (int): Attention heads. Defaults to 8.
        ffn_channels (int): FFN hidden channels. Defaults to 1024.
        max_kv_tokens (int | Sequence[int]): Key/value token budget of the attention (see
            :class:`ScaleFusion`): one int for every scale, or 4 ints for strides 4, 8, 16, 32
            (e.g. ``(256, 1024, 1024, 1024)`` pools the 1/4 keys/values 4× more; the attention
            at a scale costs queries × budget). Defaults to 1024.
        dropout (float): Attention and FFN dropout. Defaults to 0.
        init_cfg (dict, optional): Unused; :meth:`init_weights` is explicit. Defaults to None.

    Forward returns ``(mask_feature, [F_T^1/32, F_T^1/16, F_T^1/8])`` with mask_feature =
    F_T^1/4, all with ``out_channels`` channels: the output format of
    ``MSDeformAttnPixelDecoder.forward``, so Mask2Former-style heads consume it unchanged.
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
                 max_kv_tokens: Union[int, Sequence[int]] = 1024,
                 dropout: float = 0.0,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_neck_in_channels(in_channels, num_modalities, 'TMSFNeck')
        if not scales or not set(scales) <= set(SCALES) or len(set(scales)) != len(scales):
            raise ValueError(f'TMSFNeck: `scales` must be distinct strides from {SCALES}, got '
                             f'{tuple(scales)}')
        if num_layers < 1:
            raise ValueError(f'TMSFNeck: `num_layers` must be >= 1, got {num_layers}')
        budgets = ((max_kv_tokens, ) * len(SCALES) if isinstance(max_kv_tokens, int) else
                   tuple(max_kv_tokens) if isinstance(max_kv_tokens, Sequence) else ())
        if len(budgets) != len(SCALES) or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in budgets):
            raise ValueError('TMSFNeck: `max_kv_tokens` must be >= 1, or a sequence of '
                             f'{len(SCALES)} such ints (strides {SCALES}), got {max_kv_tokens!r}')
        if out_channels % 2 or out_channels % num_heads:
            raise ValueError(f'TMSFNeck: `out_channels`={out_channels} must be even and divisible '
                             f'by `num_heads`={num_heads}')
        self.num_modalities = num_modalities
        self.in_channels = [list(c) for c in in_channels]
        self.scales = tuple(scales)
        self.max_kv_tokens = budgets
        decoders = [build_pixel_decoder(pixel_decoder, channels, out_channels, 'TMSFNeck')
                    for channels in self.in_channels]
        self.pixel_decoders = ModuleList(decoders)
        self.fusions = ModuleList(
            ScaleFusion(out_channels, num_modalities, s in self.scales, num_layers, num_heads,
                        ffn_channels, budget, dropout)
            for s, budget in (zip(SCALES, budgets) if num_modalities > 1 else ()))

    def init_weights(self) -> None:
        """Pixel decoders initialise themselves; xavier for the fusion weights (linear, 1x1 conv,
        attention projections)."""
        for decoder in self.pixel_decoders:
            decoder.init_weights()
        for param in self.fusions.parameters():
            if param.dim() > 1:
                nn.init.xavier_uniform_(param)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Refuse weights whose pixel decoders have another encoder depth than this neck (e.g. a
        checkpoint trained with Mask2Former's 6 layers loaded into the 3-layer R50 configs):
        non-strict loading would only warn and run with dropped or random layers."""
        for m, decoder in enumerate(self.pixel_decoders):
            layers = f'{prefix}pixel_decoders.{m}.encoder.layers.'
            built = len(decoder.encoder.layers)
            found = max((int(key[len(layers):].split('.')[0]) + 1 for key in state_dict
                         if key.startswith(layers)), default=built)
            if found != built:
                raise ValueError(
                    f'TMSFNeck: the weights of pixel decoder {m} have {found} encoder layers, '
                    f'the model has {built}; set `model.neck.pixel_decoder.encoder.num_layers='
                    f'{found}` to load them.')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, modality_feats: ModalityFeatures) -> Tuple[Tensor, List[Tensor]]:
        """Per-modality backbone levels (strides 4..32) -> (F_T^1/4, [F_T^1/32, ^1/16, ^1/8])."""
        check_modality_features(modality_feats, 'TMSFNeck')
        if len(modality_feats) != self.num_modalities:
            raise ValueError(f'TMSFNeck: got features of {len(modality_feats)} modalities, '
                             f'expected {self.num_modalities} (`num_modalities`)')
        per_scale: List[List[Tensor]] = [[] for _ in SCALES]
        for feats, decoder in zip(modality_feats, self.pixel_decoders):
            if len(feats) != len(SCALES):
                raise ValueError(f'TMSFNeck: a modality gave {len(feats)} feature levels, '
                                 f'expected {len(SCALES)} (strides {SCALES})')
            mask_feature, multi_scale = decoder(list(feats))  # multi_scale: 1/32, 1/16, 1/8
            for i, feat in enumerate([mask_feature] + multi_scale[::-1]):
                per_scale[i].append(feat)
        if self.num_modalities == 1:  # nothing to fuse
            fused = [feats[0] for feats in per_scale]
        else:
            fused = [fusion(feats) for fusion, feats in zip(self.fusions, per_scale)]
        return fused[0], fused[:0:-1]
