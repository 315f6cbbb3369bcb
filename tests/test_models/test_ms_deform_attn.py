"""Fast CPU multi-scale deformable attention: equal to mmcv's pure-PyTorch path, drop-in module."""
import math

import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
from mmdet.models.layers import MSDeformAttnPixelDecoder
from mmdet.registry import MODELS
from mmengine.config import ConfigDict

from pmtseg_mm.models.layers import (FastMSDeformAttnPixelDecoder,
                                     FastMultiScaleDeformableAttention,
                                     multi_scale_deformable_attn_cpu)
from small_parts import pixel_decoder

C = 32
PIXEL_DECODER = ConfigDict(pixel_decoder(C, num_layers=2, in_channels=[8, 16, 32, 64],
                                          strides=[4, 8, 16, 32], feat_channels=C,
                                          out_channels=C))


def _inputs(batch=2, shapes=((12, 10), (6, 5), (3, 3)), heads=4, channels=8, points=3, spread=0.6,
            seed=0):
    """Random values, weights and locations; ``spread`` puts many points outside [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    num_value = sum(h * w for h, w in shapes)
    queries, levels = 50, len(shapes)
    value = torch.randn(batch, num_value, heads, channels, generator=g)
    locations = torch.rand(batch, queries, 1, levels, 1, 2, generator=g) + spread * torch.randn(
        batch, queries, heads, levels, points, 2, generator=g)
    weights = torch.rand(batch, queries, heads, levels * points, generator=g).softmax(-1)
    return value, torch.tensor(shapes), locations, weights.view(batch, queries, heads, levels, points)


def _expected_outside(s: float) -> float:
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    one = 2 * (cdf(-1 / s) + s * (pdf(0) - pdf(1 / s)))
    return 1 - (1 - one)**2


@pytest.mark.parametrize('batch, spread', [(1, 0.05), (2, 0.6), (3, 2.0)])
def test_matches_mmcv_pytorch_function(batch, spread):
    value, shapes, locations, weights = _inputs(batch=batch, spread=spread)
    outside = ((locations < 0) | (locations > 1)).any(-1).float().mean().item()
    # a coordinate u + s·z (u ~ U(0, 1), z ~ N(0, 1)) leaves [0, 1] with probability
    # 2∫_0^1 Φ(-u/s) du = 2[Φ(-1/s) + s(φ(0) - φ(1/s))]; a point when either of its two does:
    # 7.8 % at s = 0.05 (mostly inside), 70 % at 0.6, 96 % at 2.0 (mostly zero padding)
    assert outside == pytest.approx(_expected_outside(spread), abs=0.03)
    expected = multi_scale_deformable_attn_pytorch(value, shapes, locations, weights)
    out = multi_scale_deformable_attn_cpu(value, shapes, locations, weights)
    assert out.shape == expected.shape == (batch, 50, 32)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


def test_edges_and_exact_pixel_centres():
    """Locations on pixel centres, the map border and just outside it, as grid_sample treats them."""
    value, shapes, _, _ = _inputs(batch=1, shapes=((4, 4), ), heads=1, channels=2, points=1)
    coords = torch.tensor([-0.3, -0.125, 0.0, 0.125, 0.5, 0.875, 1.0, 1.125, 1.3])
    grid = torch.stack(torch.meshgrid(coords, coords, indexing='xy'), -1).reshape(1, -1, 1, 1, 1, 2)
    weights = torch.ones(grid.shape[:-1])
    expected = multi_scale_deformable_attn_pytorch(value, shapes, grid, weights)
    out = multi_scale_deformable_attn_cpu(value, shapes, grid, weights)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    # a pixel centre is that pixel's value; x = 1.0 is the map's edge: half the last column
    assert torch.allclose(out[0, 3 * 9 + 3], value[0, 0, 0], atol=1e-6)
    assert torch.allclose(out[0, 3 * 9 + 6], 0.5 * value[0, 3, 0], atol=1e-6)
    assert torch.allclose(out[0, 0], torch.zeros(2)) and torch.allclose(out[0, -1], torch.zeros(2))


def _grads(fn, value, shapes, locations, weights):
    """Gradients (value, locations, weights) of a fixed linear read-out of ``fn``'s output."""
    value, locations, weights = [t.clone().requires_grad_(True) for t in (value, locations, weights)]
    out = fn(value, shapes, locations, weights)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return value.grad, locations.grad, weights.grad


def test_gradients_match_mmcv():
    inputs = _inputs(batch=2, spread=0.4)
    ref = _grads(multi_scale_deformable_attn_pytorch, *inputs)
    for fast, expected in zip(_grads(multi_scale_deformable_attn_cpu, *inputs), ref):
        torch.testing.assert_close(fast, expected, atol=1e-4, rtol=0)


def test_gradients_match_mmcv_at_initial_sampling_points():
    """mmdet's initialisation puts every sampling point on a pixel centre (reference point at a
    centre plus whole-pixel offsets), where bilinear sampling is not differentiable: the location
    gradient is still the same one-sided difference as grid_sample's, in float32 and float64."""
    shapes = torch.tensor([[16, 16], [8, 8], [4, 4]])
    heads, points = 2, 4
    ys, xs = torch.meshgrid(torch.arange(16) + 0.5, torch.arange(16) + 0.5, indexing='ij')
    reference = torch.stack([xs.flatten(), ys.flatten()], -1) / 16  # float32, as mmdet's
    offsets = torch.tensor([[1., 0.], [0., 1.], [-1., 0.], [0., -1.]]) * torch.arange(
        1, points + 1).view(points, 1)  # pixels, as MultiScaleDeformableAttention.init_weights
    locations = reference[:, None, None, None] + offsets / shapes.flip(-1)[:, None].float()
    locations = locations.expand(256, heads, 3, points, 2)[None]
    g = torch.Generator().manual_seed(0)
    value = torch.randn(1, 336, heads, 4, generator=g)
    weights = torch.rand(1, 256, heads, 3, points, generator=g)
    for dtype in (torch.float32, torch.float64):
        inputs = (value.to(dtype), shapes, locations.to(dtype), weights.to(dtype))
        expected = _grads(multi_scale_deformable_attn_pytorch, *inputs)[1]
        assert expected.abs().mean() > 0.1
        torch.testing.assert_close(_grads(multi_scale_deformable_attn_cpu, *inputs)[1], expected,
                                   atol=1e-4, rtol=0)


def test_module_equals_mmcv_module():
    torch.manual_seed(0)
    stock = MultiScaleDeformableAttention(embed_dims=C, num_heads=4, num_levels=2, num_points=3,
                                          dropout=0.0, batch_first=False)
    fast = MODELS.build(dict(type='FastMultiScaleDeformableAttention', embed_dims=C, num_heads=4,
                             num_levels=2, num_points=3, dropout=0.0, batch_first=False))
    assert isinstance(fast, MultiScaleDeformableAttention)
    assert list(fast.state_dict()) == list(stock.state_dict())
    with torch.no_grad():  # non-trivial offsets and weights
        for p in stock.parameters():
            p.add_(0.1 * torch.randn_like(p))
    fast.load_state_dict(stock.state_dict())
    shapes = torch.tensor([[6, 8], [3, 4]])
    start = torch.tensor([0, 48])
    value = torch.randn(60, 2, C)
    query, pos = torch.randn(60, 2, C), torch.randn(60, 2, C)
    for ref_dims in (2, 4):
        reference = torch.rand(2, 60, 2, ref_dims)
        args = dict(query=query, value=value, query_pos=pos, reference_points=reference,
                    spatial_shapes=shapes, level_start_index=start)
        torch.testing.assert_close(fast(**args), stock(**args), atol=1e-5, rtol=0)
    mask = torch.rand(2, 60) > 0.7
    torch.testing.assert_close(
        fast(**args, key_padding_mask=mask), stock(**args, key_padding_mask=mask), atol=1e-5, rtol=0)


def _levels(batch=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, c, size // s, size // s, generator=g)
            for c, s in zip(PIXEL_DECODER['in_channels'], (4, 8, 16, 32))]


def test_pixel_decoder_is_a_drop_in_replacement():
    torch.manual_seed(0)
    stock = MODELS.build(PIXEL_DECODER)
    after_stock = torch.rand(3)
    torch.manual_seed(0)
    fast = MODELS.build(ConfigDict(PIXEL_DECODER, type='FastMSDeformAttnPixelDecoder'))
    assert torch.equal(torch.rand(3), after_stock)  # the swap leaves the global RNG alone
    assert isinstance(fast, FastMSDeformAttnPixelDecoder) and isinstance(fast, MSDeformAttnPixelDecoder)
    assert all(type(layer.self_attn) is FastMultiScaleDeformableAttention
               for layer in fast.encoder.layers)
    assert list(fast.state_dict()) == list(stock.state_dict())
    # same seed, same weights: the replacement copies the stock attention's parameters
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(),
                                                 stock.state_dict().values()))
    stock.init_weights()
    fast.load_state_dict(stock.state_dict())
    stock.eval(), fast.eval()
    with torch.no_grad():
        for p in stock.encoder.parameters():  # offsets large enough to leave the maps
            p.add_(0.2 * torch.randn_like(p))
    fast.load_state_dict(stock.state_dict())
    feats = _levels()
    with torch.no_grad():
        expected_mask, expected_multi = stock(feats)
        mask, multi = fast(feats)
    torch.testing.assert_close(mask, expected_mask, atol=1e-4, rtol=0)
    for a, b in zip(multi, expected_multi):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_pixel_decoder_gradients_match():
    torch.manual_seed(0)
    stock = MODELS.build(PIXEL_DECODER)
    fast = MODELS.build(ConfigDict(PIXEL_DECODER, type='FastMSDeformAttnPixelDecoder'))
    stock.init_weights()
    with torch.no_grad():  # off the pixel centres that init_weights puts every sampling point on,
        for p in stock.encoder.parameters():  # where bilinear sampling has no unique gradient
            p.add_(0.05 * torch.randn_like(p))
    fast.load_state_dict(stock.state_dict())
    for decoder in (stock, fast):
        mask, multi = decoder(_levels(batch=1, size=32))
        (mask.square().mean() + sum(m.square().mean() for m in multi)).backward()
    for (name, a), b in zip(stock.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-4, rtol=1e-3, msg=name)
