"""TaskContrastiveLoss (L_CON, eq. 12-14): hand-computed values, its minimum, the literal floor."""
import math

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS

from pmtseg_mm.models.losses import TaskContrastiveLoss


def ce(logits, positives):
    """-log(Σ_{j∈positives} e^{z_j} / Σ_j e^{z_j}) by hand."""
    return -math.log(sum(math.exp(logits[j]) for j in positives) /
                     sum(math.exp(z) for z in logits))


T = [(1.0, 0.0), (0.0, 1.0), (0.6, 0.8)]
LAB = [(0.8, 0.6), (-0.6, 0.8), (0.0, -1.0)]
TAU = 0.5
SIM = [[a[0] * b[0] + a[1] * b[1] for b in LAB] for a in T]  # unit vectors: cosines


def hand_loss(positives):
    """Symmetric loss of the three slots above, positives[i] = slots positive for slot i."""
    t2l = sum(ce([SIM[i][j] / TAU for j in range(3)], positives[i]) for i in range(3)) / 3
    l2t = sum(ce([SIM[i][j] / TAU for i in range(3)], positives[j]) for j in range(3)) / 3
    return t2l + l2t


#: cos(T_i, LAB_j) / τ written out by hand (rows: T_i; e.g. (.6, .8)·(.8, .6) = .96 -> 1.92)
LOGITS = [[1.6, -1.2, 0.0], [1.2, 1.6, -2.0], [1.92, 0.56, -1.6]]
#: eq. 12-14, literal form: mean over rows of logsumexp(row) - diagonal (task -> label), plus the
#: same over columns (label -> task); = 2.6285845...
LITERAL = (sum(np.logaddexp.reduce(LOGITS[i]) - LOGITS[i][i] for i in range(3)) / 3 +
           sum(np.logaddexp.reduce([row[j] for row in LOGITS]) - LOGITS[j][j]
               for j in range(3)) / 3)


def test_literal_form_equals_hand_computation():
    assert np.allclose(np.array(SIM) / TAU, LOGITS, atol=1e-12)
    assert hand_loss([[0], [1], [2]]) == pytest.approx(LITERAL, abs=1e-9)
    assert LITERAL == pytest.approx(2.6285845368932828, abs=1e-12)
    # unnormalised inputs: ⊙ is the cosine similarity; β scales the sum of both directions
    q_task = (torch.tensor(T) * torch.tensor([[1.0], [3.0], [2.0]]))[None]
    q_label = (torch.tensor(LAB) * 0.5)[None]
    loss = TaskContrastiveLoss(form='literal', tau=TAU, loss_weight=2.0)
    # the slot texts do not matter to the literal form
    for texts in ([[0, 1, 2]], [[5, 5, 5]]):
        value = loss(q_task, q_label, torch.tensor(texts))
        assert value.item() == pytest.approx(2 * LITERAL, abs=1e-5)
    # batched: the mean over images (symmetric in its inputs)
    batched = loss(torch.cat([q_task, q_label]), torch.cat([q_label, q_task]),
                   torch.tensor([[0, 1, 2]] * 2))
    assert batched.item() == pytest.approx(2 * LITERAL, abs=1e-5)


def test_slots_sharing_a_label_text_are_positives_of_each_other():
    q_task, q_label = torch.tensor(T)[None], torch.tensor(LAB)[None]
    loss = TaskContrastiveLoss(tau=TAU, loss_weight=1.0)
    # slots 0 and 2 carry the same text: each is a positive of the other
    assert loss.positives(torch.tensor([[4, 1, 4]]))[0].tolist() == [
        [True, False, True], [False, True, False], [True, False, True]]
    value = loss(q_task, q_label, torch.tensor([[4, 1, 4]]))
    assert value.item() == pytest.approx(hand_loss([[0, 2], [1], [0, 2]]), abs=1e-5)
    assert hand_loss([[0, 2], [1], [0, 2]]) < hand_loss([[0], [1], [2]])
    # all texts distinct: the two forms agree
    distinct = torch.tensor([[0, 1, 2]])
    assert loss(q_task, q_label, distinct).item() == pytest.approx(
        TaskContrastiveLoss(form='literal', tau=TAU, loss_weight=1.0)(
            q_task, q_label, distinct).item(), abs=1e-6)


def perfect_alignment(num_queries, num_pad, num_classes, num_images=2):
    """Q_task = Q_label, one orthogonal direction per label text; ``num_pad`` padding slots and
    the others matched to ``num_classes`` classes in turn (repeated class texts when fewer
    classes than matched slots)."""
    pad = num_classes
    texts = torch.tensor([c % num_classes for c in range(num_queries - num_pad)] + [pad] * num_pad)
    texts = texts[torch.randperm(num_queries, generator=torch.Generator().manual_seed(0))]
    q = torch.eye(num_classes + 1)[texts] * 3.0  # any norm: cosine
    return q.expand(num_images, -1, -1), texts.expand(num_images, -1)


@pytest.mark.parametrize('num_queries, num_pad, num_classes, floor', [
    (50, 40, 10, 5.90), (100, 90, 10, 8.10), (50, 40, 5, None), (6, 3, 3, None)])
def test_minimum_of_both_forms_at_a_perfect_alignment(num_queries, num_pad, num_classes, floor):
    q, texts = perfect_alignment(num_queries, num_pad, num_classes)
    multi = TaskContrastiveLoss(loss_weight=1.0)(q, q, texts).item()
    # multi-positive: 2·(1/N)·Σ_i ln(1 + (N - n_i)·e^{-1/τ}/n_i) < 1e-4
    assert 0 <= multi < 1e-4
    # literal (as printed): 2·(1/N)·Σ_i ln n_i (n_i slots share slot i's text), up to e^{-1/τ}
    literal = TaskContrastiveLoss(form='literal', loss_weight=1.0)(q, q, texts).item()
    matched = num_queries - num_pad
    exact = 2 * (num_pad * math.log(num_pad) +
                 matched * math.log(matched / num_classes)) / num_queries
    assert literal == pytest.approx(exact, abs=1e-3)
    if floor is not None:  # distinct class texts: 2·(n_pad/N)·ln n_pad, the documented floor
        assert literal == pytest.approx(floor, abs=0.01)


def test_multi_positive_loss_is_minimised_by_gradient_descent():
    """With repeated texts, the default loss can be driven towards 0; the literal one stalls at
    its floor."""
    torch.manual_seed(0)
    texts = torch.tensor([[0, 0, 1, 2, 3, 3, 3, 3]])
    q_label = torch.randn(1, 4, 16)[:, texts[0]]  # identical rows for identical texts
    finals = {}
    for form in ('multi_positive', 'literal'):
        q_task = torch.randn(1, 8, 16, requires_grad=True)
        loss = TaskContrastiveLoss(form=form, loss_weight=1.0)
        optim = torch.optim.Adam([q_task], lr=0.1)
        for _ in range(300):
            optim.zero_grad()
            value = loss(q_task, q_label, texts)
            value.backward()
            optim.step()
        finals[form] = value.item()
    assert finals['multi_positive'] < 0.01
    floor = 2 * (2 * math.log(2) + 4 * math.log(4)) / 8  # n_i = 2 for text 0, 4 for text 3
    assert finals['literal'] == pytest.approx(floor, abs=0.05)


def test_batch_level_equals_hand_computation():
    """OneFormer-style L_CON: image a's flattened query set against image b's text set."""
    q_task = torch.tensor([[[1.0], [0.0]], [[0.0], [3.0]]])  # flattened: (1, 0), (0, 1)·3
    q_label = torch.tensor([[[1.0], [1.0]], [[0.0], [2.0]]])  # (1, 1)/√2, (0, 1)·2
    r = 1 / math.sqrt(2)
    logits = [[r / TAU, 0.0], [r / TAU, 1.0 / TAU]]  # [a][b] = cos(Q_task(a), Q_label(b)) / τ
    t2l = (ce(logits[0], [0]) + ce(logits[1], [1])) / 2
    l2t = (ce([logits[0][0], logits[1][0]], [0]) + ce([logits[0][1], logits[1][1]], [1])) / 2
    loss = TaskContrastiveLoss(level='batch', tau=TAU, loss_weight=1.0)
    different = torch.tensor([[0, 1], [0, 2]])
    assert loss(q_task, q_label, different).item() == pytest.approx(t2l + l2t, abs=1e-6)
    # the literal form is the same when the images' texts differ
    literal = TaskContrastiveLoss(form='literal', level='batch', tau=TAU, loss_weight=1.0)
    assert literal(q_task, q_label, different).item() == pytest.approx(t2l + l2t, abs=1e-6)
    # images with the same slot texts are positives of each other (multi-positive only)
    same = torch.tensor([[0, 1], [0, 1]])
    assert loss.positives(same).tolist() == [[True, True], [True, True]]
    assert loss(q_task, q_label, same).item() == pytest.approx(0.0, abs=1e-6)
    assert literal(q_task, q_label, same).item() == pytest.approx(t2l + l2t, abs=1e-6)
    # one image: nothing to contrast
    assert loss(q_task[:1], q_label[:1], different[:1]).item() == pytest.approx(0.0)


def test_registered_and_bad_arguments():
    assert isinstance(MODELS.build(dict(type='TaskContrastiveLoss')), TaskContrastiveLoss)
    for kwargs, words in ((dict(form='sum'), '`form`'), (dict(level='image'), '`level`'),
                          (dict(tau=0), '`tau`'), (dict(tau=True), '`tau`')):
        with pytest.raises(ValueError, match=words):
            TaskContrastiveLoss(**kwargs)
    q = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r'\(B, N, C\)'):
        TaskContrastiveLoss()(q, q[:, :2], torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match='slot texts'):
        TaskContrastiveLoss()(q, q, torch.zeros(2, 2, dtype=torch.long))
