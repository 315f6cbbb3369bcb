"""Helpers shared by the paper modules."""
import copy
import math
from typing import List, Sequence, Tuple

from mmdet.registry import MODELS
from mmdet.utils import ConfigType
from mmengine.config import ConfigDict
from torch import Tensor, nn

#: Strides of the backbone levels and of the pixel-decoder outputs the necks work with.
SCALES = (4, 8, 16, 32)

#: ``DualBackbone(fusion=None)`` output: ``feats[m][level]``, one level sequence per modality.
ModalityFeatures = Sequence[Sequence[Tensor]]


def pooled_grid(height: int, width: int, max_points: int) -> Tuple[int, int]:
    """Largest grid (gh, gw) with gh·gw ≤ ``max_points`` keeping the aspect ratio of (H, W).

    Maps that already have at most ``max_points`` points are left as they are. Bounds the
    affinity of TMAA and the keys/values of TMSF's cross-attention whatever the input size.
    """
    if height * width <= max_points:
        return height, width
    scale = math.sqrt(max_points / (height * width))
    grid_h = min(height, max_points, max(1, math.floor(height * scale)))
    grid_w = max(1, min(width, math.floor(width * scale), max_points // grid_h))
    return grid_h, grid_w


def check_modality_features(feats: ModalityFeatures, owner: str) -> None:
    """Raise one error naming ``owner`` unless ``feats`` is one level sequence per modality.

    One pyramid (a sequence of tensors) is what ``DualBackbone`` returns with a fusion mode;
    the error says to build it with ``fusion=None``.
    """
    if isinstance(feats, Tensor) or not isinstance(feats, Sequence) or not feats:
        raise ValueError(f'{owner}: expected one sequence of backbone levels per modality '
                         f'(DualBackbone with fusion=None), got {type(feats).__name__}')
    if any(isinstance(f, Tensor) or not isinstance(f, Sequence) for f in feats):
        raise ValueError(f'{owner}: expected one sequence of backbone levels per modality, got '
                         'one pyramid of tensors; build DualBackbone with fusion=None (not '
                         "'early', 'sum', 'concat' or 'gate'), also for a single channel group")


def check_neck_in_channels(in_channels: Sequence[Sequence[int]], num_modalities: int,
                          owner: str) -> List[List[int]]:
    """``in_channels`` of a per-modality neck: ``num_modalities`` (>= 1) lists of the channels
    of the :data:`SCALES` levels; one error naming ``owner`` and the key otherwise."""
    if num_modalities < 1:
        raise ValueError(f'{owner}: `num_modalities` must be >= 1, got {num_modalities}')
    if len(in_channels) != num_modalities:
        raise ValueError(f'{owner}: `in_channels` lists {len(in_channels)} modalities but '
                         f'`num_modalities`={num_modalities}')
    channels = [list(c) for c in in_channels]
    for levels in channels:
        if len(levels) != len(SCALES):
            raise ValueError(f'{owner}: each `in_channels` entry must give the channels of '
                             f'{len(SCALES)} levels (strides {SCALES}), got {levels}')
    return channels


def build_pixel_decoder(pixel_decoder: ConfigType, in_channels: Sequence[int], out_channels: int,
                        owner: str) -> nn.Module:
    """Build an mmdet ``MSDeformAttnPixelDecoder``-style config for levels of strides
    :data:`SCALES` with ``in_channels``; its ``strides``, ``feat_channels``, ``out_channels``
    and ``num_outs`` are set to (4, 8, 16, 32), ``out_channels``, ``out_channels`` and 3, and a
    config giving other values, or an encoder of fewer than 1 layer, is an error naming ``owner``."""
    required = dict(strides=list(SCALES), feat_channels=out_channels, out_channels=out_channels,
                    num_outs=len(SCALES) - 1)
    cfg = ConfigDict(copy.deepcopy(dict(pixel_decoder)))
    num_layers = (cfg.get('encoder') or {}).get('num_layers')
    if num_layers is not None and num_layers < 1:  # mmdet's encoder reads its first layer's width
        raise ValueError(f'{owner}: `pixel_decoder.encoder.num_layers`={num_layers} must be >= 1 '
                         '(mmdet\'s Mask2FormerTransformerEncoder cannot be built without layers)')
    for key, value in required.items():
        if key in cfg and (list(cfg[key]) if key == 'strides' else cfg[key]) != value:
            raise ValueError(f'{owner}: `pixel_decoder.{key}`={cfg[key]} must be {value} '
                             f'(`out_channels`={out_channels})')
    cfg.update(required, in_channels=list(in_channels))
    return MODELS.build(cfg)
