"""Task-adapted contrastive loss L_CON of PMTSeg (paper sec. III-D-2, eq. 12-14; Table X).

Q_task (the task-level object queries) and Q_label (the label-level queries encoded from the
label text of each query slot) are aligned by a symmetric InfoNCE (eq. 14 = eq. 12 + eq. 13).

**Why several positives per slot (``form='multi_positive'``, the default).** Slot i's label text
is "RS data with a {category}" of the ground-truth segment the Hungarian matching gave it, or the
padding text when it got none. With N = 50-100 queries and a handful of segments per image, most
slots carry the padding text, and all slots matched to segments of one class carry the same class
text. The label encoder has no slot encoding, so slots with the same text have *identical* rows of
Q_label. Read literally (``form='literal'``: only j = i is the positive), eq. 12 then counts the
positive itself among the negatives: its softmax over j can never exceed 1/n_i (n_i = slots
sharing slot i's text), the loss cannot go below

    L_literal ≥ 2 · (1/N) · Σ_i ln n_i ≈ 2 · (n_pad / N) · ln n_pad

(5.9 for N = 50 with 40 padding slots, 8.1 for N = 100 with 90), and most of its gradient pulls the
unmatched task queries towards one vector. We read the sums of eq. 12-13 as a supervised
(multi-positive) contrast: every slot that carries the same label text is a positive of the
others, and the positives are summed inside the log,

    L_{task→label} = -(1/N) Σ_i log( Σ_{j: t_j = t_i} e^{s_ij/τ} / Σ_j e^{s_ij/τ} ),

so that a perfect alignment (each Q_task row equal to its label text's Q_label row, different
texts orthogonal) gives L_CON ≈ 0 (exactly 2·(1/N)·Σ_i ln(1 + (N - n_i) e^{-1/τ} / n_i)). When all
texts are distinct the two forms are the same.

**Levels.** ``level='query'`` (eq. 12-14) contrasts the N slots within each image, averaged over
slots and images. ``level='batch'`` (OneFormer's query-text contrast) contrasts the images of the
batch: each image's flattened, L2-normalised query set against every image's label-query set;
its positives are the images whose slot texts are all the same as its own (``'multi_positive'``;
always includes itself) or itself only (``'literal'``). A batch of one image gives 0.

q ⊙ q' of eq. 12-13 is the cosine similarity. τ = 0.07 is ours (the paper does not give it): CLIP's
initial temperature, which makes e^{-1/τ} ≈ 6e-7, so orthogonal negatives no longer count.
"""
import math
from numbers import Real

import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor, nn

FORMS = ('multi_positive', 'literal')
LEVELS = ('query', 'batch')


def info_nce(logits: Tensor, positives: Tensor) -> Tensor:
    """Mean over rows of -log(Σ_{j∈P(i)} e^{logits_ij} / Σ_j e^{logits_ij}).

    Args:
        logits (Tensor): (..., R, K).
        positives (Tensor): Bool, broadcastable to ``logits``; at least one True per row.
    """
    positive_logits = logits.masked_fill(~positives, float('-inf'))
    return (torch.logsumexp(logits, -1) - torch.logsumexp(positive_logits, -1)).mean()


def symmetric_info_nce(q_task: Tensor, q_label: Tensor, positives: Tensor, tau: float) -> Tensor:
    """L_{task→label} + L_{label→task} (eq. 12-14) on (…, R, C) rows; ``positives`` (…, R, R) is
    symmetric, so the same mask serves both directions."""
    q_task = F.normalize(q_task, dim=-1)
    q_label = F.normalize(q_label, dim=-1)
    logits = q_task @ q_label.transpose(-1, -2) / tau  # [i, j] = q_i^task ⊙ q_j^label / τ
    return info_nce(logits, positives) + info_nce(logits.transpose(-1, -2), positives)


@MODELS.register_module()
class TaskContrastiveLoss(nn.Module):
    """β·L_CON (eq. 12-14) between Q_task and Q_label, with the positives given by the slots'
    label texts (see the module docstring for the forms and levels).

    Args:
        form (str): ``'multi_positive'`` (default: slots sharing a label text are positives of
            each other) or ``'literal'`` (eq. 12-13 as printed: slot i only).
        level (str): ``'query'`` (eq. 12-14, per image) or ``'batch'`` (per batch, OneFormer).
        tau (float): Temperature τ, > 0. Defaults to 0.07 (ours, see above).
        loss_weight (float): β of eq. 16. Defaults to 0.5.
    """

    def __init__(self,
                 form: str = 'multi_positive',
                 level: str = 'query',
                 tau: float = 0.07,
                 loss_weight: float = 0.5) -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f'TaskContrastiveLoss: `form` must be one of {FORMS}, got {form!r}.')
        if level not in LEVELS:
            raise ValueError(f'TaskContrastiveLoss: `level` must be one of {LEVELS}, '
                             f'got {level!r}.')
        if isinstance(tau, bool) or not isinstance(tau, Real) or not 0 < tau < math.inf:
            raise ValueError(f'TaskContrastiveLoss: `tau` must be a finite number > 0, got {tau!r}.')
        self.form = form
        self.level = level
        self.tau = float(tau)
        self.loss_weight = float(loss_weight)

    def positives(self, slot_texts: Tensor) -> Tensor:
        """Positive mask of the contrast: (B, N, N) at query level, (B, B) at batch level.

        Args:
            slot_texts (Tensor): (B, N) index of each slot's label text.
        """
        if self.level == 'query':
            if self.form == 'literal':
                eye = torch.eye(slot_texts.shape[1], dtype=torch.bool, device=slot_texts.device)
                return eye.expand(slot_texts.shape[0], -1, -1)
            return slot_texts[:, :, None] == slot_texts[:, None, :]
        if self.form == 'literal':
            return torch.eye(slot_texts.shape[0], dtype=torch.bool, device=slot_texts.device)
        return (slot_texts[:, None, :] == slot_texts[None, :, :]).all(-1)

    def forward(self, q_task: Tensor, q_label: Tensor, slot_texts: Tensor) -> Tensor:
        """
        Args:
            q_task (Tensor): Q_task, (B, N, C).
            q_label (Tensor): Q_label, (B, N, C).
            slot_texts (Tensor): (B, N) label-text index of every slot (equal index = equal
                text, hence equal Q_label row).

        Returns:
            Tensor: β·(L_{task→label} + L_{label→task}), a scalar.
        """
        if q_task.shape != q_label.shape or q_task.dim() != 3 \
                or tuple(slot_texts.shape) != tuple(q_task.shape[:2]):
            raise ValueError(f'TaskContrastiveLoss: Q_task {tuple(q_task.shape)} and Q_label '
                             f'{tuple(q_label.shape)} must both be (B, N, C) and the slot texts '
                             f'(B, N), got {tuple(slot_texts.shape)}.')
        positives = self.positives(slot_texts)
        if self.level == 'batch':  # one row per image; a batch of one image gives 0
            q_task, q_label = q_task.flatten(1), q_label.flatten(1)
        return self.loss_weight * symmetric_info_nce(q_task, q_label, positives, self.tau)
