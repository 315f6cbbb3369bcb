"""TMAALoss (eq. 2-6): values, bounds, level/pair averaging, gradients, memory bound, errors."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn

from pmtseg_mm.models.losses.tmaa_loss import TMAALoss
from pmtseg_mm.models.utils import pooled_grid
from loss_references import tmaa_level_reference, tmaa_reference

LN2 = math.log(2.0)


def _points_to_map(points, h, w):
    """(P, C) python lists, row-major over (h, w) → a (1, C, h, w) tensor."""
    return torch.tensor(points, dtype=torch.float32).t().reshape(1, -1, h, w)


def _reference(points_a, points_b, tau, mode):
    """Plain-python eq. 2-6 for two point sets (no pooling, one sample)."""

    def dists(points):
        norms = [math.sqrt(sum(v * v for v in p)) for p in points]
        rows = []
        for p, n_p in zip(points, norms):
            logits = [sum(u * v for u, v in zip(p, q)) / (n_p * n_q) / tau
                      for q, n_q in zip(points, norms)]
            exps = [math.exp(z) for z in logits]
            rows.append([e / sum(exps) for e in exps])
        return rows

    total = 0.0
    for p, q in zip(dists(points_a), dists(points_b)):
        if mode == 'kl':
            total += sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
        elif mode == 'ed':
            total += math.sqrt(sum((pi - qi)**2 for pi, qi in zip(p, q)))
        else:
            m = [(pi + qi) / 2 for pi, qi in zip(p, q)]
            total += 0.5 * sum(pi * math.log(pi / mi) for pi, mi in zip(p, m))
            total += 0.5 * sum(qi * math.log(qi / mi) for qi, mi in zip(q, m))
    return total / len(points_a)


# 2x2 maps, points in row-major order. Cosine patterns: A = [1,0,1,0]-type rows, B = [1,1,0,0]-type
# rows; B's points have different norms (2, 3, 5, 0.5) to check the normalisation.
POINTS_A = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
POINTS_B = [[2.0, 0.0, 0.0], [3.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.5, 0.0]]


def test_hand_computed_four_points():
    # tau = 0.5: every row has logits {2, 2, 0, 0}, so entries a = e²/(2e²+2), b = 1/(2e²+2),
    # a + b = 1/2. Each row of A and B agrees at two positions and swaps a <-> b at two, where
    # M = (a + b)/2 = 1/4:
    #   JS = ½[(a ln 4a + b ln 4b) + (b ln 4b + a ln 4a)] = a ln 4a + b ln 4b
    #   KL = a ln(a/b) + b ln(b/a) = (a - b) ln(e²) = 2(a - b)
    #   ED = sqrt((a - b)² + (b - a)²) = √2 (a - b)
    a = math.exp(2) / (2 * math.exp(2) + 2)
    b = 1 / (2 * math.exp(2) + 2)
    expected = dict(js=a * math.log(4 * a) + b * math.log(4 * b), kl=2 * (a - b),
                    ed=math.sqrt(2) * (a - b))
    assert expected['js'] == pytest.approx(0.1639, abs=1e-4)
    assert expected['kl'] == pytest.approx(0.7616, abs=1e-4)
    assert expected['ed'] == pytest.approx(0.5386, abs=1e-4)
    feat_a, feat_b = _points_to_map(POINTS_A, 2, 2), _points_to_map(POINTS_B, 2, 2)
    assert feat_a[0, :, 1, 0].tolist() == [1.0, 0.0] and feat_b[0, :, 0, 1].tolist() == [3, 0, 0]
    for mode, value in expected.items():
        loss = TMAALoss(mode=mode, tau=0.5, levels=(0, ), loss_weight=1.0)
        assert loss([[feat_a], [feat_b]]).item() == pytest.approx(value, rel=1e-5)
        assert value == pytest.approx(_reference(POINTS_A, POINTS_B, 0.5, mode), rel=1e-12)


def test_matches_plain_python_reference_on_asymmetric_points():
    pts_a = [[1.0, 2.0], [-1.0, 0.5], [0.3, -2.0], [2.0, 2.0]]
    pts_b = [[1.0], [-2.0], [0.5], [3.0]]  # one channel: cosines are ±1
    feat_a, feat_b = _points_to_map(pts_a, 2, 2), _points_to_map(pts_b, 2, 2)
    values = {}
    for mode in ('js', 'kl', 'ed'):
        loss = TMAALoss(mode=mode, tau=0.7, levels=(0, ), loss_weight=1.0)
        values[mode] = loss([[feat_a], [feat_b]]).item()
        assert values[mode] == pytest.approx(_reference(pts_a, pts_b, 0.7, mode), rel=1e-5)
        swapped = loss([[feat_b], [feat_a]]).item()
        assert swapped == pytest.approx(_reference(pts_b, pts_a, 0.7, mode), rel=1e-5)
    assert values['kl'] != pytest.approx(_reference(pts_b, pts_a, 0.7, 'kl'), rel=1e-2)
    assert 0 < values['js'] < LN2


@pytest.mark.parametrize('mode', ['js', 'kl', 'ed'])
def test_identical_inputs_give_zero(mode):
    torch.manual_seed(0)
    feats = [torch.randn(2, 6, 8, 8), torch.randn(2, 6, 4, 4)]
    loss = TMAALoss(mode=mode, levels=(0, 1))
    assert loss([feats, [f.clone() for f in feats]]).item() == pytest.approx(0.0, abs=1e-6)
    # the same affinity from different channel counts: a 1-channel map and its 2-channel copy
    single = torch.randn(1, 1, 4, 4)
    assert loss([[single, single], [single.repeat(1, 2, 1, 1)] * 2]).item() == \
        pytest.approx(0.0, abs=1e-6)


def test_js_symmetric_and_bounded_on_random_inputs():
    torch.manual_seed(1)
    loss = TMAALoss(mode='js', levels=(0, 1), max_points=64, loss_weight=1.0)
    for _ in range(5):
        a = [torch.randn(2, 4, 16, 16), torch.randn(2, 8, 4, 4)]
        b = [torch.randn(2, 3, 16, 16) * 10, torch.randn(2, 2, 4, 4)]
        ab, ba = loss([a, b]).item(), loss([b, a]).item()
        assert ab == pytest.approx(ba, rel=1e-5, abs=1e-7)
        assert 0.0 < ab <= LN2


@pytest.mark.parametrize('tau', [1e-4, 0.1, 100.0])
def test_js_bounded_on_adversarial_inputs(tau):
    loss = TMAALoss(mode='js', tau=tau, levels=(0, ), loss_weight=1.0)
    identical = torch.ones(1, 4, 4, 4)  # uniform rows
    orthogonal = torch.eye(16).reshape(1, 16, 4, 4)  # one-hot rows for small tau
    zeros = torch.zeros(1, 2, 4, 4)  # zero vectors: cosine 0, uniform rows
    signs = torch.tensor([1.0, -1.0]).repeat(8).reshape(1, 1, 4, 4)
    huge = signs * 1e30
    tiny = signs * 1e-30
    maps = [identical, orthogonal, zeros, huge, tiny]
    for x in maps:
        for y in maps:
            value = loss([[x], [y]])
            assert torch.isfinite(value)
            assert -1e-6 <= value.item() <= LN2 + 1e-6
    # uniform (1/16) vs one-hot rows over 16 points at tau=1e-4: M = 17/32 at the hot point and
    # 1/32 elsewhere, KL(P‖M) = (1/16)ln(2/17) + (15/16)ln 2, KL(Q‖M) = ln(32/17)
    if tau == 1e-4:
        expected = 0.5 * (math.log(2 / 17) / 16 + 15 / 16 * LN2 + math.log(32 / 17))
        assert expected == pytest.approx(0.5743, abs=1e-4)
        assert loss([[identical], [orthogonal]]).item() == pytest.approx(expected, rel=1e-5)
        assert loss([[orthogonal], [identical]]).item() == pytest.approx(expected, rel=1e-5)


def test_loss_weight_scales():
    torch.manual_seed(2)
    a, b = [torch.randn(1, 3, 8, 8)], [torch.randn(1, 5, 8, 8)]
    for mode in ('js', 'kl', 'ed'):
        one = TMAALoss(mode=mode, levels=(0, ), loss_weight=1.0)([a, b])
        default = TMAALoss(mode=mode, levels=(0, ))([a, b])
        # 8x8 = 64 points <= max_points 1024: no pooling; default tau 0.1
        assert one.item() == pytest.approx(tmaa_level_reference(a[0], b[0], 0.1, mode), rel=1e-5)
        assert default.item() == pytest.approx(5.0 * one.item(), rel=1e-6)
        assert TMAALoss(mode=mode, levels=(0, ), loss_weight=0.0)([a, b]).item() == 0.0


def test_levels_selection():
    torch.manual_seed(3)
    same = torch.randn(1, 4, 8, 8)
    a = [same, torch.randn(1, 4, 4, 4), torch.randn(1, 4, 2, 2)]
    b = [same.clone(), torch.randn(1, 2, 4, 4), torch.randn(1, 2, 2, 2)]
    level0 = TMAALoss(levels=(0, ), loss_weight=1.0)([a, b]).item()
    level1 = TMAALoss(levels=(1, ), loss_weight=1.0)([a, b]).item()
    level2 = TMAALoss(levels=(2, ), loss_weight=1.0)([a, b]).item()
    assert level0 == pytest.approx(0.0, abs=1e-6)
    # 4x4 and 2x2 maps: no pooling; default tau 0.1
    assert level1 == pytest.approx(tmaa_level_reference(a[1], b[1], 0.1), rel=1e-5)
    assert level2 == pytest.approx(tmaa_level_reference(a[2], b[2], 0.1), rel=1e-5)
    assert TMAALoss(levels=(1, 0), loss_weight=1.0)([a, b]).item() == pytest.approx(level1 / 2)
    assert TMAALoss(levels=(0, 1, 2), loss_weight=1.0)([a, b]).item() == \
        pytest.approx((level1 + level2) / 3)
    # features beyond the selected levels are ignored
    assert TMAALoss(levels=(1, ), loss_weight=1.0)([a[:2], b[:2]]).item() == pytest.approx(level1)


@pytest.mark.parametrize('mode', ['js', 'kl', 'ed'])
def test_three_modalities_average_over_pairs(mode):
    torch.manual_seed(4)
    a, b, c = [torch.randn(2, 3, 6, 6)], [torch.randn(2, 1, 6, 6)], [torch.randn(2, 5, 6, 6)]
    loss = TMAALoss(mode=mode, levels=(0, ), loss_weight=2.0)
    pairs = [loss([a, b]).item(), loss([a, c]).item(), loss([b, c]).item()]
    assert loss([a, b, c]).item() == pytest.approx(sum(pairs) / 3, rel=1e-5)
    # a third modality equal to the first: pairs (0,1), (0,2)=0, (1,2) (KL direction 1 -> 0)
    expected = (loss([a, b]).item() + loss([b, a]).item()) / 3
    assert loss([a, b, a]).item() == pytest.approx(expected, rel=1e-5)


def test_mismatched_spatial_sizes_pool_to_common_grid():
    torch.manual_seed(5)
    a, b = torch.randn(2, 3, 8, 4), torch.randn(2, 2, 4, 8)
    loss = TMAALoss(levels=(0, ), loss_weight=1.0)
    expected = loss([[F.adaptive_avg_pool2d(a, (4, 4))], [F.adaptive_avg_pool2d(b, (4, 4))]])
    assert loss([[a], [b]]).item() == pytest.approx(expected.item(), rel=1e-6)
    # the common grid 4x4 (smallest H and W), then 16 points <= 1024: mean of 2x1 and 1x2 blocks
    expected = tmaa_level_reference(F.avg_pool2d(a, (2, 1)), F.avg_pool2d(b, (1, 2)), 0.1)
    assert loss([[a], [b]]).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize('mode', ['js', 'kl', 'ed'])
def test_gradients_reach_both_backbones(mode):
    torch.manual_seed(6)
    optical = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1),
                             nn.Conv2d(4, 8, 3, stride=2, padding=1)])
    aux = nn.ModuleList([nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(6, 2, 3, stride=2, padding=1)])

    def run(net, x):
        feats = []
        for conv in net:
            x = torch.relu(conv(x))
            feats.append(x)
        return feats

    loss = TMAALoss(mode=mode, levels=(0, 1), max_points=16)
    feats_a, feats_b = run(optical, torch.rand(2, 3, 16, 16)), run(aux, torch.rand(2, 1, 16, 16))
    value = loss([feats_a, feats_b])
    assert value.requires_grad
    # max_points 16: level 0 (16x16) and level 1 (8x8) are both pooled to a 4x4 grid, i.e. mean
    # pooling of 4x4 and 2x2 blocks; the default loss_weight is 5
    expected = tmaa_reference([F.avg_pool2d(feats_a[0], 4), F.avg_pool2d(feats_a[1], 2)],
                              [F.avg_pool2d(feats_b[0], 4), F.avg_pool2d(feats_b[1], 2)],
                              mode=mode)
    assert value.item() == pytest.approx(expected, rel=1e-5)
    value.backward()
    for net in (optical, aux):
        for param in net.parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all()
            assert param.grad.abs().sum().item() > 0


def test_identical_inputs_have_finite_gradients():
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    y = x.detach().clone().requires_grad_(True)
    for mode in ('js', 'kl', 'ed'):
        x.grad = y.grad = None
        TMAALoss(mode=mode, levels=(0, ))([[x], [y]]).backward()
        assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_pooled_grid():
    assert pooled_grid(1024, 1024, 256) == (16, 16)
    assert pooled_grid(40, 10, 100) == (20, 5)
    assert pooled_grid(3, 3, 256) == (3, 3)  # small enough: unchanged
    assert pooled_grid(1, 5000, 16) == (1, 16)
    assert pooled_grid(7, 1000, 10) == (1, 10)
    assert pooled_grid(1000, 7, 10) == (10, 1)
    assert pooled_grid(5, 5, 1) == (1, 1)
    # 33·65 = 2145 > 1024: both sides scaled by sqrt(1024 / 2145) = 0.691 and floored (22.8,
    # 44.9): 22·44 = 968 ≤ 1024 points, the aspect 44/22 = 2.0 close to 65/33 = 1.97
    scale = math.sqrt(1024 / (33 * 65))
    assert pooled_grid(33, 65, 1024) == (math.floor(33 * scale), math.floor(65 * scale)) == (22, 44)
    assert 22 * 44 <= 1024 and abs(44 / 22 - 65 / 33) < 0.05


def test_memory_bound_on_large_maps():
    torch.manual_seed(7)
    loss = TMAALoss(levels=(0, ), max_points=256)
    a, b = torch.randn(1, 8, 1024, 1024), torch.randn(1, 8, 1024, 1024)
    dist = loss.affinity_distribution(a)
    assert dist.shape == (1, 256, 256)
    assert torch.allclose(dist.sum(-1), torch.ones(1, 256), atol=1e-5)
    assert torch.allclose(loss.affinity_distribution(a, log=True).exp(), dist, atol=1e-6)
    shapes = []
    original = loss.affinity_distribution

    def spy(feat, log=False):
        out = original(feat, log=log)
        shapes.append(tuple(out.shape))
        return out

    loss.affinity_distribution = spy
    value = loss([[a], [b]])
    assert shapes == [(1, 256, 256), (1, 256, 256)]
    # 1024x1024 with max_points 256: a 16x16 grid, the mean of every 64x64 block; weight 5
    expected = tmaa_reference([F.avg_pool2d(a, 64)], [F.avg_pool2d(b, 64)])
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # a wide map keeps its aspect ratio and still stays within max_points points
    assert original(torch.randn(2, 3, 1, 5000)).shape == (2, 256, 256)
    assert TMAALoss(max_points=100).affinity_distribution(torch.randn(1, 2, 40, 10)).shape == \
        (1, 100, 100)
    assert TMAALoss().affinity_distribution(torch.randn(3, 2, 3, 3)).shape == (3, 9, 9)


@pytest.mark.parametrize('kwargs, key', [
    (dict(mode='cosine'), '`mode`'),
    (dict(mode='JS'), '`mode`'),
    (dict(tau=0), '`tau`'),
    (dict(tau=-0.1), '`tau`'),
    (dict(tau=float('inf')), '`tau`'),
    (dict(tau='0.1'), '`tau`'),
    (dict(max_points=0), '`max_points`'),
    (dict(max_points=2.5), '`max_points`'),
    (dict(levels=()), '`levels`'),
    (dict(levels=(0, -1)), '`levels`'),
    (dict(levels=(1, 1)), '`levels`'),
    (dict(levels=0), '`levels`'),
    (dict(loss_weight=-1.0), '`loss_weight`'),
])
def test_bad_constructor_args(kwargs, key):
    with pytest.raises(ValueError, match=key):
        TMAALoss(**kwargs)


def test_one_modality_switches_the_loss_off():
    """Table VIII single-modality rows / one stacked group: no modality pair, L_TMAA = 0."""
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    value = TMAALoss(levels=(0, 1))([(x, x)])  # DualBackbone(fusion=None), one group
    assert value.shape == () and value.dtype == torch.float32 and value.item() == 0.0
    with pytest.raises(ValueError, match=r'`levels`=\(0, 3\) but modality 0 has 2 levels'):
        TMAALoss(levels=(0, 3))([(x, x)])
    with pytest.raises(ValueError, match='got one pyramid of tensors; build DualBackbone with '
                       'fusion=None'):
        TMAALoss(levels=(0, 1))((x, x))  # DualBackbone(fusion='early')


def test_bad_forward_inputs():
    x = torch.randn(1, 2, 4, 4)
    loss = TMAALoss(levels=(0, 1))
    with pytest.raises(ValueError, match=r'TMAALoss: expected one sequence of backbone levels per '
                       r'modality \(DualBackbone with fusion=None\), got Tensor'):
        loss(x)
    with pytest.raises(ValueError, match='TMAALoss: .* got one pyramid of tensors'):
        loss([x, [x, x]])
    with pytest.raises(ValueError, match=r'`levels`=\(0, 1\) but modality 1 has 1 levels'):
        loss([[x, x], [x]])
    with pytest.raises(ValueError, match=r'same B'):
        loss([[x, x], [x, torch.randn(2, 2, 4, 4)]])
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        loss([[x, x], [x, torch.randn(2, 4, 4)]])


def test_builds_from_registry():
    loss = MODELS.build(dict(type='TMAALoss', mode='kl'))
    assert isinstance(loss, TMAALoss)
    assert (loss.mode, loss.tau, loss.levels, loss.max_points, loss.loss_weight) == \
        ('kl', 0.1, (0, 1, 2, 3), 1024, 5.0)
