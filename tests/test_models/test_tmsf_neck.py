"""TMSFNeck (eq. 7-10): shapes per scale, dependence on both modalities, bounded attention."""
import pytest
import torch
from mmdet.registry import MODELS

from pmtseg_mm.models.necks import ScaleFusion, TMSFNeck

C = 32
PIXEL_DECODER = dict(
    type='MSDeformAttnPixelDecoder',
    num_outs=3,
    norm_cfg=dict(type='GN', num_groups=8),
    act_cfg=dict(type='ReLU'),
    encoder=dict(
        num_layers=1,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=C, num_heads=4, num_levels=3, num_points=2, dropout=0.0,
                               batch_first=True),
            ffn_cfg=dict(embed_dims=C, feedforward_channels=64, num_fcs=2, ffn_drop=0.0,
                         act_cfg=dict(type='ReLU', inplace=True)))),
    positional_encoding=dict(num_feats=C // 2, normalize=True))
IN_CHANNELS = [[8, 16, 32, 64], [4, 8, 16, 32]]


def _neck(**kwargs):
    cfg = dict(type='TMSFNeck', in_channels=IN_CHANNELS, pixel_decoder=PIXEL_DECODER,
               out_channels=C, num_heads=4, ffn_channels=64, max_kv_tokens=64)
    cfg.update(kwargs)
    neck = MODELS.build(cfg)
    neck.init_weights()
    return neck.eval()


def _feats(size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.rand(2, c, size // s, size // s, generator=g) for c, s in zip(chans, (4, 8, 16, 32))]
            for chans in IN_CHANNELS]


@pytest.mark.parametrize('scales', [(4, 8, 16, 32), (4, )])
@pytest.mark.parametrize('num_layers', [1, 2, 3])
def test_output_shapes(scales, num_layers):
    neck = _neck(scales=scales, num_layers=num_layers)
    attending = [f.attend for f in neck.fusions]
    assert attending == [s in scales for s in (4, 8, 16, 32)]
    assert all(len(t) == num_layers for f in neck.fusions if f.attend for t in f.trans)
    mask_feature, multi_scale = neck(_feats())
    assert mask_feature.shape == (2, C, 16, 16)
    assert [tuple(f.shape) for f in multi_scale] == [(2, C, 2, 2), (2, C, 4, 4), (2, C, 8, 8)]


def test_fused_features_depend_on_both_modalities():
    neck = _neck()
    feats = _feats()
    with torch.no_grad():
        ref = neck(feats)
        again = neck(_feats())
        assert torch.equal(ref[0], again[0])
        for m in range(2):
            perturbed = _feats()
            perturbed[m] = [f + 0.5 * torch.rand_like(f) for f in perturbed[m]]
            out = neck(perturbed)
            assert (out[0] - ref[0]).abs().max() > 1e-4
            for a, b in zip(out[1], ref[1]):
                assert (a - b).abs().max() > 1e-4


def test_gradients_reach_both_modalities():
    neck = _neck().train()
    feats = [[f.requires_grad_() for f in m] for m in _feats()]
    mask_feature, multi_scale = neck(feats)
    (mask_feature.sum() + sum(f.sum() for f in multi_scale)).backward()
    for m in feats:
        assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in m)


def test_attention_keys_are_bounded():
    fusion = ScaleFusion(C, 2, attend=True, num_layers=1, num_heads=4, ffn_channels=64,
                         max_kv_tokens=64, dropout=0.0)
    seen = []
    layer = fusion.trans[0][0]
    layer.register_forward_pre_hook(lambda mod, args: seen.append((args[0].shape[1], args[1].shape[1])))
    out = fusion([torch.rand(1, C, 32, 32), torch.rand(1, C, 32, 32)])
    assert out.shape == (1, C, 32, 32)
    assert seen == [(1024, 64)]  # 1024 queries attend to 8x8 = 64 pooled keys
    assert tuple(fusion.reduce_kv(torch.rand(1, C, 6, 5)).shape) == (1, C, 6, 5)  # small: kept


@pytest.mark.parametrize('kwargs, words', [
    (dict(in_channels=IN_CHANNELS[:1]), '`in_channels` lists 1 modalities'),
    (dict(scales=(4, 64)), '`scales` must be distinct strides'),
    (dict(num_layers=0), '`num_layers` must be >= 1'),
    (dict(num_modalities=1, in_channels=IN_CHANNELS[:1]), '`num_modalities` must be >= 2'),
    (dict(pixel_decoder=dict(PIXEL_DECODER, out_channels=64)), '`pixel_decoder.out_channels`=64'),
])
def test_bad_configs(kwargs, words):
    with pytest.raises(ValueError) as err:
        _neck(**kwargs)
    assert words in str(err.value)


def test_bad_inputs():
    neck = _neck()
    with pytest.raises(ValueError, match='features of 1 modalities, expected 2'):
        neck(_feats()[:1])
    feats = _feats()
    feats[1] = feats[1][:3]
    with pytest.raises(ValueError, match='gave 3 feature levels, expected 4'):
        neck(feats)
    assert isinstance(neck, TMSFNeck)
