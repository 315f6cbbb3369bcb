"""Affinity-based distribution loss of TMAA (paper sec. III-B, eq. 2-6; Table VI ablation)."""
import math
from itertools import combinations
from numbers import Real
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

from ..utils import ModalityFeatures, check_modality_features, pooled_grid

_MODES = ('js', 'kl', 'ed')


@MODELS.register_module()
class TMAALoss(nn.Module):
    """Task-common multimodal affinity approximation loss L_TMAA (eq. 2-6), times α.

    For every selected level and modality, the feature map is average-pooled to at most
    ``max_points`` points (aspect ratio kept, see :func:`pooled_grid`), the pairwise affinity
    of all points is the cosine similarity ``r_i·r_j / (‖r_i‖₂‖r_j‖₂)`` (eq. 2/3 print squared
    norms but call it the normalised cosine similarity, which is what is used here), and each
    row is turned into a distribution over all points by a softmax with temperature τ
    (eq. 4/5). The rows of two modalities are compared (eq. 6) by

    - ``'js'``: JS(P, Q) = ½KL(P‖M) + ½KL(Q‖M), M = ½(P + Q), natural log, so 0 ≤ JS ≤ ln 2;
    - ``'kl'``: KL(P‖Q) with P the lower-index modality (modality 0, optical, is the
      reference);
    - ``'ed'``: the Euclidean distance ‖p − q‖₂ between the two rows.

    The result is averaged over rows and batch, then over levels, then over all modality pairs
    (i < j), and multiplied by ``loss_weight``. Affinities are computed in float32; nothing is
    detached, so gradients reach every modality's features. With one modality (Table VIII
    single-modality rows, or early fusion) there is no pair to align and the loss is 0.

    Args:
        mode (str): ``'js'`` (paper), ``'kl'`` or ``'ed'``. Defaults to ``'js'``.
        tau (float): Softmax temperature τ of eq. 4/5, > 0. Defaults to 0.1 (ours: the paper
            gives no value; with cosine affinities in [-1, 1], τ = 0.1 spreads the row logits
            over [-10, 10], so a row is peaked on similar points without being one-hot).
        levels (Sequence[int]): Feature levels the loss is applied to. Defaults to (0, 1, 2, 3).
        max_points (int): Most points per map, so an affinity never exceeds max_points² entries
            per sample. Defaults to 1024 (ours: the paper compares all points, 16384² entries
            at 1/4 of a 512² input, which does not fit in memory; 1024 points = a 32² grid,
            4 MiB per affinity in float32; the tiny configs use 256).
        loss_weight (float): α of eq. 16. Defaults to 5.0.
    """

    def __init__(self,
                 mode: str = 'js',
                 tau: float = 0.1,
                 levels: Sequence[int] = (0, 1, 2, 3),
                 max_points: int = 1024,
                 loss_weight: float = 5.0) -> None:
        super().__init__()
        if mode not in _MODES:
            raise ValueError(f'TMAALoss: `mode` must be one of {_MODES}, got {mode!r}')
        if isinstance(tau, bool) or not isinstance(tau, Real) or not 0 < tau < math.inf:
            raise ValueError(f'TMAALoss: `tau` must be a finite number > 0, got {tau!r}')
        if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or not levels \
                or any(isinstance(lv, bool) or not isinstance(lv, int) or lv < 0 for lv in levels) \
                or len(set(levels)) != len(levels):
            raise ValueError('TMAALoss: `levels` must be a non-empty sequence of distinct '
                             f'non-negative ints, got {levels!r}')
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
            raise ValueError(f'TMAALoss: `max_points` must be an int >= 1, got {max_points!r}')
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, Real) \
                or not 0 <= loss_weight < math.inf:
            raise ValueError('TMAALoss: `loss_weight` must be a finite number >= 0, got '
                             f'{loss_weight!r}')
        self.mode = mode
        self.tau = float(tau)
        self.levels = tuple(levels)
        self.max_points = max_points
        self.loss_weight = float(loss_weight)

    def affinity_distribution(self, feat: Tensor, log: bool = False) -> Tensor:
        """Row-wise affinity distributions (eq. 2-5) of a (B, C, H, W) map.

        Returns:
            Tensor: (B, P, P) float32 with P ≤ ``max_points``; row i is point i's softmax
            distribution over all points (its log if ``log=True``).
        """
        if feat.dim() != 4:
            raise ValueError(f'TMAALoss: features must be (B, C, H, W), got shape '
                             f'{tuple(feat.shape)}')
        grid = pooled_grid(feat.shape[2], feat.shape[3], self.max_points)
        if grid != tuple(feat.shape[2:]):
            feat = F.adaptive_avg_pool2d(feat, grid)
        points = F.normalize(feat.float().flatten(2).transpose(1, 2), dim=-1)  # (B, P, C)
        logits = torch.bmm(points, points.transpose(1, 2)) / self.tau
        return logits.log_softmax(dim=-1) if log else logits.softmax(dim=-1)

    def divergence(self, log_p: Tensor, log_q: Tensor) -> Tensor:
        """Per-row divergence (eq. 6 and its Table VI variants) of (B, P, P) log-distributions.

        Returns:
            Tensor: (B, P).
        """
        if self.mode == 'ed':
            return torch.linalg.vector_norm(log_p.exp() - log_q.exp(), dim=-1)
        if self.mode == 'kl':
            return (log_p.exp() * (log_p - log_q)).sum(-1)
        log_m = torch.logaddexp(log_p, log_q) - math.log(2.0)
        return 0.5 * ((log_p.exp() * (log_p - log_m)).sum(-1) +
                      (log_q.exp() * (log_q - log_m)).sum(-1))

    def forward(self, modality_feats: ModalityFeatures) -> Tensor:
        """Compute ``loss_weight · L_TMAA``.

        Args:
            modality_feats: ``modality_feats[m][level]`` is a (B, C_m, H, W) map; channels may
                differ across modalities. If a level's spatial sizes differ across modalities,
                every map of that level is average-pooled to the smallest height and width.
                One modality gives a zero loss.

        Returns:
            Tensor: scalar loss.
        """
        check_modality_features(modality_feats, 'TMAALoss')
        for m, feats in enumerate(modality_feats):
            if len(feats) <= max(self.levels):
                raise ValueError(f'TMAALoss: `levels`={self.levels} but modality {m} has '
                                 f'{len(feats)} levels')
        if len(modality_feats) == 1:
            return modality_feats[0][self.levels[0]].new_zeros((), dtype=torch.float32)
        pair_losses = {pair: [] for pair in combinations(range(len(modality_feats)), 2)}
        for level in self.levels:
            maps = [feats[level] for feats in modality_feats]
            log_dists = [self.affinity_distribution(x, log=True) for x in self._common_size(maps)]
            for i, j in pair_losses:
                pair_losses[(i, j)].append(self.divergence(log_dists[i], log_dists[j]).mean())
        per_pair = [torch.stack(losses).mean() for losses in pair_losses.values()]
        return self.loss_weight * torch.stack(per_pair).mean()

    @staticmethod
    def _common_size(maps: List[Tensor]) -> List[Tensor]:
        """Pool one level's maps of all modalities to their smallest common (H, W)."""
        for x in maps:
            if x.dim() != 4 or x.shape[0] != maps[0].shape[0]:
                raise ValueError('TMAALoss: every feature map must be (B, C, H, W) with the same '
                                 f'B, got shapes {[tuple(x.shape) for x in maps]}')
        size = (min(x.shape[2] for x in maps), min(x.shape[3] for x in maps))
        return [x if tuple(x.shape[2:]) == size else F.adaptive_avg_pool2d(x, size) for x in maps]
