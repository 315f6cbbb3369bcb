"""TMSFNeck (eq. 7-10): shapes per scale, dependence on both modalities, bounded attention."""
import math
import re

import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import nn

from pmtseg_mm.models.layers import FastMSDeformAttnPixelDecoder
from pmtseg_mm.models.necks.tmsf_neck import CrossAttentionLayer, ScaleFusion, TMSFNeck
from pmtseg_mm.models.utils import pooled_grid as kv_grid
from small_parts import pixel_decoder

C = 32
PIXEL_DECODER = pixel_decoder(C)
IN_CHANNELS = [[8, 16, 32, 64], [4, 8, 16, 32]]


def _neck(**kwargs) -> TMSFNeck:
    cfg = dict(type='TMSFNeck', in_channels=IN_CHANNELS, pixel_decoder=PIXEL_DECODER,
               out_channels=C, num_heads=4, ffn_channels=64, max_kv_tokens=64)
    cfg.update(kwargs)
    neck = MODELS.build(cfg)
    neck.init_weights()
    return neck.eval()


def _feats(size=64, seed=0, batch=2, in_channels=IN_CHANNELS):
    g = torch.Generator().manual_seed(seed)
    return [[torch.rand(batch, c, size // s, size // s, generator=g)
             for c, s in zip(chans, (4, 8, 16, 32))] for chans in in_channels]


@pytest.mark.parametrize('scales', [(4, 8, 16, 32), (4, )])
@pytest.mark.parametrize('num_layers', [1, 2, 3])
def test_output_shapes(scales, num_layers):
    neck = _neck(scales=scales, num_layers=num_layers)
    assert isinstance(neck, TMSFNeck)
    assert [f.attend for f in neck.fusions] == [s in scales for s in (4, 8, 16, 32)]
    assert [len(t) for f in neck.fusions if f.attend for t in f.trans] == [num_layers] * 2 * len(
        scales)
    with torch.no_grad():
        mask_feature, multi_scale = neck(_feats())
    assert mask_feature.shape == (2, C, 16, 16)
    assert [tuple(f.shape) for f in multi_scale] == [(2, C, 2, 2), (2, C, 4, 4), (2, C, 8, 8)]


def test_unlisted_scales_use_joint_mlp_only():
    neck = _neck(scales=(4, ))
    feats = _feats()
    with torch.no_grad():
        decoded = [decoder(f) for decoder, f in zip(neck.pixel_decoders, feats)]
        _, multi_scale = neck(feats)
        for i, fusion in zip((2, 1, 0), neck.fusions[1:]):  # strides 8, 16, 32
            expected = fusion.joint(torch.cat([d[1][i] for d in decoded], dim=1))
            torch.testing.assert_close(multi_scale[i], expected)


def test_three_modalities():
    in_channels = IN_CHANNELS + [[4, 4, 8, 8]]
    neck = _neck(num_modalities=3, in_channels=in_channels)
    assert len(neck.pixel_decoders) == 3 and all(len(f.trans) == 3 for f in neck.fusions)
    assert neck.fusions[0].joint[0].in_channels == 3 * C
    with torch.no_grad():
        mask_feature, multi_scale = neck(_feats(batch=1, in_channels=in_channels))
    assert mask_feature.shape == (1, C, 16, 16)
    assert [tuple(f.shape) for f in multi_scale] == [(1, C, 2, 2), (1, C, 4, 4), (1, C, 8, 8)]


def test_fused_features_depend_on_both_modalities():
    neck = _neck()
    with torch.no_grad():
        ref = neck(_feats())
        again = neck(_feats())
        assert torch.equal(ref[0], again[0])
        assert all(torch.equal(a, b) for a, b in zip(ref[1], again[1]))
        for m in range(2):
            perturbed = _feats()
            perturbed[m] = [f + 0.5 * torch.rand_like(f) for f in perturbed[m]]
            out = neck(perturbed)
            assert (out[0] - ref[0]).abs().max() > 1e-4
            for a, b in zip(out[1], ref[1]):
                assert (a - b).abs().max() > 1e-4


def test_registry_build_and_gradients_reach_both_modalities():
    neck = _neck().train()
    feats = [[f.requires_grad_() for f in m] for m in _feats()]
    mask_feature, multi_scale = neck(feats)
    (mask_feature.sum() + sum(f.sum() for f in multi_scale)).backward()
    for m in feats:
        assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in m)


@pytest.mark.parametrize('size, budget, grid', [
    ((32, 32), 64, (8, 8)),
    ((6, 5), 64, (6, 5)),  # already within budget: kept
    ((16, 64), 64, (4, 16)),  # aspect ratio kept
    ((1, 1000), 64, (1, 64)),
    ((100, 3), 10, (10, 1)),
])
def test_kv_grid(size, budget, grid):
    assert kv_grid(*size, budget) == grid
    assert all(
        kv_grid(h, w, n)[0] * kv_grid(h, w, n)[1] <= n for h in (1, 7, 33, 128) for w in (1, 5, 64)
        for n in (1, 3, 64, 1000))


def _attention_sizes(neck: TMSFNeck, size: int = 128):
    """(queries, keys) of every first cross-attention layer, scale by scale, modality by modality."""
    seen = []
    hooks = [layers[0].register_forward_pre_hook(
        lambda mod, args: seen.append((args[0].shape[1], args[1].shape[1])))
             for fusion in neck.fusions for layers in fusion.trans]
    with torch.no_grad():
        mask_feature, _ = neck(_feats(size=size, batch=1))
    for hook in hooks:
        hook.remove()
    assert mask_feature.shape == (1, C, size // 4, size // 4)
    return seen


def test_attention_keys_are_bounded():
    neck = _neck()  # max_kv_tokens=64
    assert neck.max_kv_tokens == (64, ) * 4
    # (queries, keys) per modality: 1/4 32x32 and 1/8 16x16 pooled to 8x8, 1/16 and 1/32 kept
    assert _attention_sizes(neck) == [(1024, 64)] * 2 + [(256, 64)] * 2 + [(64, 64)] * 2 + [
        (16, 16)] * 2


@pytest.mark.parametrize('budgets', [(16, 64, 32, 4), [256, 8, 1000, 16]])
def test_token_budget_per_scale(budgets):
    neck = _neck(max_kv_tokens=budgets)
    assert neck.max_kv_tokens == tuple(budgets)
    assert [f.max_kv_tokens for f in neck.fusions] == list(budgets)
    expected = [(side**2, kv_grid(side, side, n)[0] * kv_grid(side, side, n)[1])
                for side, n in zip((32, 16, 8, 4), budgets)]
    assert _attention_sizes(neck) == [e for e in expected for _ in range(2)]


def test_init_weights():
    neck = MODELS.build(dict(type='TMSFNeck', in_channels=IN_CHANNELS, pixel_decoder=PIXEL_DECODER,
                             out_channels=C, num_heads=4, ffn_channels=64))
    # torch defaults: conv bias uniform, 1x1 conv weights within 1/sqrt(fan_in) = 1/8
    assert neck.pixel_decoders[0].mask_feature.bias.abs().sum() > 0
    assert neck.fusions[0].joint[0].weight.abs().max() <= 0.125
    neck.init_weights()
    assert all(d.mask_feature.bias.abs().sum() == 0 for d in neck.pixel_decoders)
    # xavier bound sqrt(6 / (64 + 32)) = 0.25
    assert 0.125 < neck.fusions[0].joint[0].weight.abs().max() <= 0.25
    ffn_fc = neck.fusions[0].trans[0][0].ffn.layers[0][0]
    assert isinstance(ffn_fc, nn.Linear)
    assert ffn_fc.weight.abs().max() <= (6 / (32 + 64))**0.5


@pytest.mark.parametrize('kwargs, words', [
    (dict(in_channels=IN_CHANNELS[:1]), '`in_channels` lists 1 modalities but `num_modalities`=2'),
    (dict(in_channels=[[8, 16, 32], [4, 8, 16]]), 'channels of 4 levels'),
    (dict(scales=(4, 64)), '`scales` must be distinct strides from (4, 8, 16, 32)'),
    (dict(scales=()), '`scales` must be distinct strides'),
    (dict(num_layers=0), '`num_layers` must be >= 1, got 0'),
    (dict(num_modalities=0, in_channels=[]), '`num_modalities` must be >= 1'),
    (dict(max_kv_tokens=0), '`max_kv_tokens` must be >= 1, or a sequence of 4 such ints'),
    (dict(max_kv_tokens=(64, 64, 64)), 'sequence of 4 such ints (strides (4, 8, 16, 32)), got (64'),
    (dict(max_kv_tokens=[64, 0, 64, 64]), 'got [64, 0, 64, 64]'),
    (dict(max_kv_tokens=64.0), '`max_kv_tokens` must be >= 1'),
    (dict(max_kv_tokens='64'), '`max_kv_tokens` must be >= 1'),
    (dict(pixel_decoder=dict(PIXEL_DECODER, encoder=dict(PIXEL_DECODER['encoder'], num_layers=0))),
     '`pixel_decoder.encoder.num_layers`=0 must be >= 1'),
    (dict(num_heads=3), 'divisible by `num_heads`=3'),
    (dict(pixel_decoder=dict(PIXEL_DECODER, out_channels=64)), '`pixel_decoder.out_channels`=64'),
    (dict(pixel_decoder=dict(PIXEL_DECODER, strides=[8, 16, 32, 64])),
     '`pixel_decoder.strides`=[8, 16, 32, 64] must be [4, 8, 16, 32]'),
])
def test_bad_configs(kwargs, words):
    with pytest.raises(ValueError) as err:
        _neck(**kwargs)
    assert words in str(err.value)


def test_one_modality_passes_its_pixel_decoder_output_through():
    """Table VIII single-modality PMTSeg: no fusion modules, F_T = the pixel-decoder output."""
    neck = _neck(num_modalities=1, in_channels=IN_CHANNELS[:1])
    assert len(neck.fusions) == 0 and len(neck.pixel_decoders) == 1
    feats = _feats(in_channels=IN_CHANNELS[:1])
    with torch.no_grad():
        mask_feature, multi_scale = neck(feats)  # DualBackbone(fusion=None), one group
        expected_mask, expected_multi = neck.pixel_decoders[0](feats[0])
    assert torch.equal(mask_feature, expected_mask)
    assert all(torch.equal(a, b) for a, b in zip(multi_scale, expected_multi))
    assert [tuple(f.shape) for f in multi_scale] == [(2, C, 2, 2), (2, C, 4, 4), (2, C, 8, 8)]
    with pytest.raises(ValueError, match='features of 2 modalities, expected 1'):
        neck(_feats())
    with pytest.raises(ValueError, match="TMSFNeck: .* one pyramid of tensors; build DualBackbone "
                       "with fusion=None \\(not 'early'"):
        neck(tuple(feats[0]))  # DualBackbone(fusion='early')


def test_more_layers_more_parameters():
    """Table VII: each extra cross-attention layer adds the same parameter count."""
    counts = [sum(p.numel() for p in _neck(num_layers=n).parameters()) for n in (1, 2, 3)]
    # one CrossAttentionLayer, C = 32, FFN 64: attention in-projection 3·32·32 + 3·32, output
    # projection 32·32 + 32; two LayerNorms 2·2·32; FFN 32·64 + 64 + 64·32 + 32
    layer = (3 * C * C + 3 * C) + (C * C + C) + 4 * C + (C * 64 + 64) + (64 * C + C)
    assert layer == 8544
    # a layer more per modality (2) at each of the 4 attended scales
    assert counts[1] - counts[0] == counts[2] - counts[1] == 4 * 2 * layer


def test_bad_inputs():
    neck = _neck()
    with pytest.raises(ValueError, match='features of 1 modalities, expected 2'):
        neck(_feats()[:1])
    feats = _feats()
    feats[1] = feats[1][:3]
    with pytest.raises(ValueError, match='gave 3 feature levels, expected 4'):
        neck(feats)
    fusion = ScaleFusion(C, 2, attend=True, num_layers=1, num_heads=4, ffn_channels=64,
                         max_kv_tokens=64, dropout=0.0)
    with pytest.raises(ValueError, match='same \\(B, C, H, W\\)'):
        fusion([torch.rand(1, C, 8, 8), torch.rand(1, C, 8, 4)])


def _sine_encoding(h: int, w: int, channels: int) -> torch.Tensor:
    """DETR's normalised sine encoding by hand, (h·w, channels): rows then columns, each
    position p/n·2π (p = 1..n) at frequencies 10000^(2⌊i/2⌋/(C/2)), sin on even i, cos on odd i."""
    half = channels // 2
    freq = 10000**(2 * (torch.arange(half) // 2) / half)

    def embed(n):
        angle = torch.arange(1, n + 1, dtype=torch.float32)[:, None] / (n + 1e-6) * 2 * math.pi
        angle = angle / freq
        return torch.where(torch.arange(half) % 2 == 0, angle.sin(), angle.cos())  # (n, half)

    y, x = embed(h), embed(w)
    return torch.cat([y[:, None].expand(h, w, half), x[None].expand(h, w, half)], -1).reshape(
        h * w, channels)


def _attention(layer, query, key, value):
    """softmax(Q Kᵀ / sqrt(d)) V per head from the layer's projection weights, by hand."""
    attn, n = layer.attn, layer.attn.num_heads
    w_q, w_k, w_v = attn.in_proj_weight.chunk(3)
    b_q, b_k, b_v = attn.in_proj_bias.chunk(3)
    q, k, v = (x @ wt.T + bias for x, wt, bias in ((query, w_q, b_q), (key, w_k, b_k),
                                                  (value, w_v, b_v)))
    b, length, c = q.shape
    split = lambda t: t.reshape(b, -1, n, c // n).transpose(1, 2)  # noqa: E731
    weights = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(c // n), -1)
    out = (weights @ split(v)).transpose(1, 2).reshape(b, length, c)
    return out @ attn.out_proj.weight.T + attn.out_proj.bias


def _reference_fusion(fusion: ScaleFusion, feats):
    """Eq. 7-10 computed by hand from the fusion's parameters: the joint/out MLPs as 1x1
    convolutions, keys/values mean-pooled in blocks to the ≤ max_kv_tokens grid, the sine
    encodings, multi-head attention, the post-norm residuals and mmcv's FFN (with its identity)."""
    def mlp(seq, x):
        first, _, second = seq
        return F.conv2d(F.relu(F.conv2d(x, first.weight, first.bias)), second.weight, second.bias)

    joint = mlp(fusion.joint, torch.cat(feats, dim=1))
    b, c, h, w = joint.shape
    tokens = lambda x: x.flatten(2).transpose(1, 2)  # noqa: E731
    query, query_pos = tokens(joint), _sine_encoding(h, w, c)
    enhanced = []
    for feat, layers in zip(feats, fusion.trans):
        gh, gw = kv_grid(h, w, fusion.max_kv_tokens)
        assert h % gh == 0 and w % gw == 0  # the test sizes pool in whole blocks
        pooled = feat.reshape(b, c, gh, h // gh, gw, w // gw).mean((3, 5))
        kv, kv_pos = tokens(pooled), _sine_encoding(gh, gw, c)
        out = query
        for layer in layers:
            attended = _attention(layer, out + query_pos, kv + kv_pos, kv)
            hidden = F.layer_norm(out + attended, (c, ), layer.norm1.weight, layer.norm1.bias)
            fc1, fc2 = [m for m in layer.ffn.modules() if isinstance(m, nn.Linear)]
            hidden = hidden + fc2(F.relu(fc1(hidden)))
            out = F.layer_norm(hidden, (c, ), layer.norm2.weight, layer.norm2.bias)
        enhanced.append(out.transpose(1, 2).reshape(b, c, h, w))
    return mlp(fusion.out, torch.cat(enhanced, dim=1))


@pytest.mark.parametrize('num_layers, size', [(1, (16, 16)), (2, (12, 20))])
def test_fusion_equals_stock_modules(num_layers, size):
    torch.manual_seed(0)
    fusion = ScaleFusion(C, 2, attend=True, num_layers=num_layers, num_heads=4, ffn_channels=64,
                         max_kv_tokens=64, dropout=0.0).eval()
    for p in fusion.parameters():  # non-zero biases too
        nn.init.normal_(p, std=0.2)
    feats = [torch.randn(2, C, *size) for _ in range(2)]
    with torch.no_grad():
        out = fusion(feats)
        torch.testing.assert_close(out, _reference_fusion(fusion, feats), atol=1e-5, rtol=0)
        assert out.abs().mean() > 0.1 and out.is_contiguous()
        torch.testing.assert_close(fusion(feats), out, atol=0, rtol=0)  # cached encodings


def test_attend_equals_multihead_attention():
    torch.manual_seed(0)
    layer = CrossAttentionLayer(C, 4, 64, dropout=0.0)
    for p in layer.attn.parameters():
        nn.init.normal_(p, std=0.2)
    query, key, value = torch.randn(2, 30, C), torch.randn(2, 7, C), torch.randn(2, 7, C)
    expected = layer.attn(query, key, value, need_weights=False)[0]
    torch.testing.assert_close(layer.attend(query, key, value), expected, atol=1e-5, rtol=0)


def test_positional_encodings_are_computed_once_per_grid():
    fusion = ScaleFusion(C, 2, attend=True, num_layers=1, num_heads=4, ffn_channels=64,
                         max_kv_tokens=64, dropout=0.0)
    like = torch.zeros(1)
    pos = fusion.position(6, 10, like)
    expected = fusion.positional_encoding(mask=None, input=torch.zeros(1, C, 6, 10))
    torch.testing.assert_close(pos, expected.flatten(2).transpose(1, 2), atol=0, rtol=0)
    assert fusion.position(6, 10, like) is pos
    for h in range(1, 9):
        fusion.position(h, 3, like)
    assert len(fusion._pos_cache) == ScaleFusion._POS_CACHE_SIZE
    assert 'pos' not in ''.join(fusion.state_dict())


@pytest.mark.parametrize('decoder_layers', [1, 6])
def test_pixel_decoder_encoder_layers(decoder_layers):
    """`pixel_decoder.encoder.num_layers` (the cost knob the paper leaves open) builds and runs."""
    cfg = dict(PIXEL_DECODER, encoder=dict(PIXEL_DECODER['encoder'], num_layers=decoder_layers))
    neck = _neck(pixel_decoder=cfg)
    assert all(len(d.encoder.layers) == decoder_layers for d in neck.pixel_decoders)
    with torch.no_grad():
        mask_feature, multi_scale = neck(_feats(batch=1))
    assert mask_feature.shape == (1, C, 16, 16) and torch.isfinite(mask_feature).all()


def test_fast_pixel_decoder_is_interchangeable():
    torch.manual_seed(0)
    stock = _neck()
    fast = _neck(pixel_decoder=dict(PIXEL_DECODER, type='FastMSDeformAttnPixelDecoder'))
    assert all(isinstance(d, FastMSDeformAttnPixelDecoder) for d in fast.pixel_decoders)
    assert list(fast.state_dict()) == list(stock.state_dict())
    fast.load_state_dict(stock.state_dict())
    feats = _feats()
    with torch.no_grad():
        expected, fast_out = stock(feats), fast(feats)
    torch.testing.assert_close(fast_out[0], expected[0], atol=1e-4, rtol=0)
    for a, b in zip(fast_out[1], expected[1]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_weights_of_another_encoder_depth_are_refused():
    """A checkpoint trained with another pixel-decoder depth (Mask2Former's 6 layers into the
    3-layer R50 default) must not load with dropped or random layers, nested as in a model."""
    from mmengine.runner.checkpoint import load_state_dict

    def depth(n):
        return dict(PIXEL_DECODER, encoder=dict(PIXEL_DECODER['encoder'], num_layers=n))

    two = nn.ModuleDict(dict(neck=_neck(pixel_decoder=depth(2))))
    for layers, found in ((1, 2), (3, 2)):
        one = nn.ModuleDict(dict(neck=_neck(pixel_decoder=depth(layers))))
        message = (f'pixel decoder 0 have {found} encoder layers, the model has {layers}; set '
                   f'`model.neck.pixel_decoder.encoder.num_layers={found}`')
        with pytest.raises(ValueError, match=re.escape(message)):
            load_state_dict(one, two.state_dict())  # mmengine's non-strict load
        with pytest.raises(ValueError, match=re.escape(message)):
            one.load_state_dict(two.state_dict(), strict=False)
    same = nn.ModuleDict(dict(neck=_neck(pixel_decoder=depth(2))))
    same.load_state_dict(two.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(),
                                                 two.state_dict().values()))
    # weights without pixel decoders (e.g. fusion only) are not checked: they load, and only the
    # pixel decoders' own keys are reported missing
    source, target = _neck(), _neck()
    partial = {k: v for k, v in source.state_dict().items() if 'pixel_decoders' not in k}
    decoder_keys = sorted(k for k in target.state_dict() if 'pixel_decoders' in k)
    assert decoder_keys and len(partial) + len(decoder_keys) == len(target.state_dict())
    result = target.load_state_dict(partial, strict=False)
    assert result.unexpected_keys == [] and sorted(result.missing_keys) == decoder_keys
    loaded = target.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in partial.items())
