"""Independent references of the PMTSeg losses, written from the paper's equations with plain
torch ops in float64 (not a test module; the loss modules' own helpers are never called)."""
import torch


def tmaa_level_reference(map_a: torch.Tensor, map_b: torch.Tensor, tau: float,
                         mode: str = 'js') -> float:
    """One level and one modality pair of L_TMAA (eq. 2-6), before ``loss_weight``.

    ``map_a``, ``map_b``: (B, C_a, H, W), (B, C_b, H, W) with the same B, H, W (pool them first
    if the loss would). Per sample: the cosine similarity of every pair of the H·W points
    (a zero vector has cosine 0 with everything, as ``F.normalize``'s eps gives), each row turned
    into a distribution by exp(s/τ) / Σ exp(s/τ), the rows of the two maps compared by JS, KL(a‖b)
    or the Euclidean distance, then the mean over rows and samples.
    """
    totals = []
    for feat_a, feat_b in zip(map_a.detach().double(), map_b.detach().double()):
        rows = []
        for feat in (feat_a, feat_b):
            points = feat.reshape(feat.shape[0], -1).t()  # (P, C)
            norms = points.pow(2).sum(-1).sqrt().clamp_min(1e-12)
            cosine = (points @ points.t()) / (norms[:, None] * norms[None, :])
            weights = torch.exp((cosine - cosine.max(-1, keepdim=True).values) / tau)
            rows.append(weights / weights.sum(-1, keepdim=True))
        p, q = rows
        if mode == 'kl':
            per_row = (p * (p / q).log()).sum(-1)
        elif mode == 'ed':
            per_row = (p - q).pow(2).sum(-1).sqrt()
        else:
            m = (p + q) / 2
            per_row = 0.5 * (p * (p / m).log()).sum(-1) + 0.5 * (q * (q / m).log()).sum(-1)
        totals.append(per_row.mean())
    return torch.stack(totals).mean().item()


def tmaa_reference(pyramid_a, pyramid_b, tau: float = 0.1, mode: str = 'js',
                   loss_weight: float = 5.0) -> float:
    """``loss_weight`` times the mean over levels of :func:`tmaa_level_reference` for one pair
    of equally sized pyramids small enough not to be pooled."""
    levels = [tmaa_level_reference(a, b, tau, mode) for a, b in zip(pyramid_a, pyramid_b)]
    return loss_weight * sum(levels) / len(levels)


def info_nce_reference(q_task: torch.Tensor, q_label: torch.Tensor, positives, tau: float) -> float:
    """L_{task→label} + L_{label→task} (eq. 12-14, multi-positive form) of one set of rows.

    ``q_task``, ``q_label``: (R, C); ``positives[i][j]`` (python bools) says whether row j is a
    positive of row i. s_ij = cos(q_task_i, q_label_j) / τ; one direction is
    -(1/R) Σ_i log(Σ_{j positive} e^{s_ij} / Σ_j e^{s_ij}), the other the same on s transposed.
    """
    a, b = q_task.detach().double(), q_label.detach().double()
    cosine = (a @ b.t()) / (a.norm(dim=-1)[:, None] * b.norm(dim=-1)[None, :])
    weights = torch.exp(cosine / tau)  # |cos / τ| ≤ 1 / 0.07 ≈ 14.3: no overflow in float64
    mask = torch.tensor(positives, dtype=torch.float64)
    total = 0.0
    for w in (weights, weights.t()):  # the mask is symmetric: the same for both directions
        total += -((w * mask).sum(-1) / w.sum(-1)).log().mean().item()
    return total
