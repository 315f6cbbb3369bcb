"""SumFusionNeck (Table IV rows without TMSF): summed levels through one pixel decoder."""
import pytest
import torch
from mmdet.registry import MODELS

from pmtseg_mm.models.necks import SumFusionNeck, TMSFNeck
from small_parts import pixel_decoder

C = 32
PIXEL_DECODER = pixel_decoder(C)
LEVELS = [8, 16, 32, 64]


def _neck(**kwargs) -> SumFusionNeck:
    cfg = dict(type='SumFusionNeck', in_channels=[LEVELS, LEVELS], pixel_decoder=PIXEL_DECODER,
               out_channels=C)
    cfg.update(kwargs)
    torch.manual_seed(0)
    neck = MODELS.build(cfg)
    neck.init_weights()
    return neck.eval()


def _levels(seed: int, batch: int = 2, size: int = 64):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, c, size // s, size // s, generator=g)
            for c, s in zip(LEVELS, (4, 8, 16, 32))]


def test_output_is_pixel_decoder_of_the_summed_levels():
    neck = _neck()
    optical, aux = _levels(0), _levels(1)
    with torch.no_grad():
        mask_feature, multi_scale = neck([optical, aux])
        expected_mask, expected_multi = neck.pixel_decoder([a + b for a, b in zip(optical, aux)])
        swapped = neck([aux, optical])[0]
    assert mask_feature.shape == (2, C, 16, 16)
    assert [tuple(f.shape) for f in multi_scale] == [(2, C, 2, 2), (2, C, 4, 4), (2, C, 8, 8)]
    assert torch.allclose(mask_feature, expected_mask, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(multi_scale, expected_multi))
    assert torch.allclose(swapped, mask_feature, atol=1e-5)  # a sum: order-free
    # both modalities matter
    with torch.no_grad():
        other = neck([optical, _levels(2)])[0]
    assert (other - mask_feature).abs().max() > 1e-4


def test_one_modality_is_mask2former_pixel_decoder():
    neck = _neck(num_modalities=1, in_channels=[LEVELS])
    levels = _levels(3)
    with torch.no_grad():
        out = neck([levels])  # DualBackbone(fusion=None), one group
        expected = neck.pixel_decoder(levels)
    assert torch.equal(out[0], expected[0])


def test_fewer_parameters_than_tmsf():
    """w/o TMSF: one pixel decoder and no scale-matched fusion."""
    tmsf = MODELS.build(dict(type='TMSFNeck', in_channels=[LEVELS, LEVELS],
                             pixel_decoder=PIXEL_DECODER, out_channels=C, num_heads=4,
                             ffn_channels=64))
    assert isinstance(tmsf, TMSFNeck)
    one_decoder = sum(p.numel() for p in tmsf.pixel_decoders[0].parameters())
    assert sum(p.numel() for p in _neck().parameters()) == one_decoder


@pytest.mark.parametrize('kwargs, words', [
    (dict(num_modalities=0, in_channels=[]), '`num_modalities` must be >= 1'),
    (dict(in_channels=[LEVELS]), '`in_channels` lists 1 modalities but `num_modalities`=2'),
    (dict(in_channels=[LEVELS, [4, 8, 16, 32]]), 'same channels for every modality'),
    (dict(in_channels=[LEVELS[:3]] * 2), 'channels of 4 levels (strides'),
    (dict(pixel_decoder=dict(PIXEL_DECODER, out_channels=64)),
     'SumFusionNeck: `pixel_decoder.out_channels`=64'),
])
def test_bad_configs(kwargs, words):
    with pytest.raises(ValueError) as err:
        _neck(**kwargs)
    assert words in str(err.value)


def test_bad_inputs():
    neck = _neck()
    with pytest.raises(ValueError, match='features of 1 modalities, expected 2'):
        neck([_levels(0)])
    with pytest.raises(ValueError, match='SumFusionNeck: .* one pyramid of tensors; build '
                       'DualBackbone with fusion=None'):
        neck(_levels(0))  # DualBackbone(fusion='early')
    with pytest.raises(ValueError, match='4 levels of equal shapes'):
        neck([_levels(0), _levels(1, size=32)])
    with pytest.raises(ValueError, match='4 levels of equal shapes'):
        neck([_levels(0), _levels(1)[:3]])
