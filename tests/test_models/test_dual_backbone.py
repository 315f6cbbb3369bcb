"""DualBackbone: channel-group split, per-modality features, pretrained first-conv adaptation."""
import pytest
import torch
from mmdet.registry import MODELS

from pmtseg_mm.models.backbones import DualBackbone, adapt_input_channels

R18 = dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), init_cfg=None)


def test_forward_per_modality_features():
    model = MODELS.build(dict(type='DualBackbone', backbones=[R18, R18], in_channels=(3, 1)))
    assert model.num_modalities == 2
    assert model.backbones[0].conv1.in_channels == 3 and model.backbones[1].conv1.in_channels == 1
    feats = model(torch.rand(2, 4, 64, 64))
    assert len(feats) == 2
    for modality in feats:
        assert [f.shape for f in modality] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4),
                                               (2, 512, 2, 2)]
    # the aux backbone sees only channel 3
    model.eval()
    x = torch.rand(1, 4, 64, 64)
    y = x.clone()
    y[:, :3] = 0
    a, b = model(x), model(y)
    assert torch.equal(a[1][3], b[1][3]) and not torch.equal(a[0][3], b[0][3])


def test_return_rule_is_set_by_fusion_not_by_group_count():
    """fusion=None: a tuple of per-modality pyramids for one group too; 'early': the pyramid."""
    x = torch.rand(2, 4, 64, 64)
    per_modality = DualBackbone(backbones=[R18], in_channels=(4, ))
    feats = per_modality(x)
    assert len(feats) == 1 and [f.shape for f in feats[0]] == R18_SHAPES
    early = DualBackbone(backbones=[R18], in_channels=(4, ), fusion='early')
    assert [f.shape for f in early(x)] == R18_SHAPES
    early.load_state_dict(per_modality.state_dict())  # the same weights and BN statistics
    per_modality.eval(), early.eval()
    assert all(torch.equal(a, b) for a, b in zip(early(x), per_modality(x)[0]))
    shared = DualBackbone(backbones=R18, in_channels=(3, 3), share_weights=True)
    assert len(shared.backbones) == 1
    shared.eval()
    x = torch.rand(1, 3, 64, 64)
    out = shared(torch.cat([x, x], 1))
    assert torch.equal(out[0][-1], out[1][-1])


def test_pretrained_rgb_weights_are_adapted(tmp_path):
    src = MODELS.build(R18)
    ckpt = tmp_path / 'r18.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in src.state_dict().items()}}, ckpt)
    pretrained = dict(type='Pretrained', checkpoint=str(ckpt), prefix='backbone')
    model = DualBackbone(backbones=[dict(R18, init_cfg=pretrained), dict(R18, init_cfg=pretrained)],
                         in_channels=(3, 2))
    model.init_weights()
    w = src.conv1.weight
    torch.testing.assert_close(model.backbones[0].conv1.weight, w)
    expected = w.mean(1, keepdim=True).repeat(1, 2, 1, 1) * 1.5
    torch.testing.assert_close(model.backbones[1].conv1.weight, expected)
    torch.testing.assert_close(model.backbones[1].layer4[0].conv1.weight, src.layer4[0].conv1.weight)
    # a constant input gives the same first-conv response as the RGB weights on constant RGB
    one = torch.ones(1, 2, 7, 7)
    assert torch.allclose((model.backbones[1].conv1.weight * one).sum(),
                          (w * torch.ones(1, 3, 7, 7)).sum(), atol=1e-4)
    # 1 channel: the RGB sum
    adapted = adapt_input_channels({'conv1.weight': w}, {'conv1.weight': torch.zeros(64, 1, 7, 7)})
    torch.testing.assert_close(adapted['conv1.weight'], w.sum(1, keepdim=True))


def test_early_fusion_group_keeps_the_pretrained_rgb_filters(tmp_path):
    """Mask2Former-EF: a 4-channel group (optical RGB first, then depth) loads a pretrained RGB
    conv1 with its colour filters bit-exact; the depth channel gets the RGB mean · 3/4."""
    src = MODELS.build(R18)
    ckpt = tmp_path / 'rgb.pth'
    torch.save({'state_dict': src.state_dict()}, ckpt)
    pretrained = dict(type='Pretrained', checkpoint=str(ckpt))
    ef = DualBackbone(backbones=[dict(R18, init_cfg=pretrained)], in_channels=(4, ))
    ef.init_weights()
    w = src.conv1.weight
    assert torch.equal(ef.backbones[0].conv1.weight[:, :3], w)
    torch.testing.assert_close(ef.backbones[0].conv1.weight[:, 3:], w.mean(1, keepdim=True) * 0.75)
    assert torch.equal(ef.backbones[0].layer1[0].conv1.weight, src.layer1[0].conv1.weight)
    # a group declared without RGB first keeps the all-channel adaptation
    no_rgb = DualBackbone(backbones=[dict(R18, init_cfg=pretrained)], in_channels=(4, ),
                          rgb_first=False)
    no_rgb.init_weights()
    torch.testing.assert_close(no_rgb.backbones[0].conv1.weight,
                               w.mean(1, keepdim=True).repeat(1, 4, 1, 1) * 0.75)
    # 5 channels (RGB + NIR + DSM): two extra channels
    adapted = adapt_input_channels({'conv1.weight': w}, {'conv1.weight': torch.zeros(64, 5, 7, 7)})
    assert torch.equal(adapted['conv1.weight'][:, :3], w)
    torch.testing.assert_close(adapted['conv1.weight'][:, 3:],
                               w.mean(1, keepdim=True).repeat(1, 2, 1, 1) * 0.6)


def test_single_config_form_gives_each_group_its_own_copy():
    """``backbones=dict(...)`` for groups of unequal channel counts (each group a copy)."""
    model = DualBackbone(backbones=R18, in_channels=(3, 1))
    assert model.backbones[0].conv1.in_channels == 3 and model.backbones[1].conv1.in_channels == 1
    assert model.backbones[0] is not model.backbones[1]
    assert [f.shape for f in model(torch.rand(2, 4, 64, 64))[1]] == [
        (2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]
    assert R18.get('in_channels') is None  # the caller's dict is left alone


@pytest.mark.parametrize('kwargs, words', [
    (dict(backbones=[R18, R18], in_channels=(3, 1), rgb_first=(True, )), '`rgb_first`'),
    (dict(backbones=[R18], in_channels=(3, 1)), '1 `backbones` configs for 2 modalities'),
    (dict(backbones=R18, in_channels=(3, 1), share_weights=True), 'needs equal channel counts'),
    (dict(backbones=[dict(R18, in_channels=3), R18], in_channels=(2, 1)),
     '`backbones[0].in_channels`=3 but `in_channels[0]`=2'),
    (dict(backbones=[R18, R18], in_channels=(3, 0)), 'must be positive'),
])
def test_bad_configs(kwargs, words):
    with pytest.raises(ValueError) as err:
        DualBackbone(**kwargs)
    assert words in str(err.value)


def test_wrong_input_channels():
    model = DualBackbone(backbones=[R18, R18], in_channels=(3, 1))
    with pytest.raises(ValueError, match=r'expected input \(B, 4, H, W\).*got \(1, 3, 32, 32\)'):
        model(torch.rand(1, 3, 32, 32))


R18_SHAPES = [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4), (2, 512, 2, 2)]


@pytest.mark.parametrize('fusion', ['sum', 'concat', 'gate'])
def test_fusion_gives_one_pyramid(fusion):
    model = DualBackbone(backbones=[R18, R18], in_channels=(3, 1), fusion=fusion)
    assert model.out_channels == [64, 128, 256, 512]
    model.eval()
    x = torch.rand(2, 4, 64, 64)
    fused = model(x)
    assert [f.shape for f in fused] == R18_SHAPES
    per_modality = model.forward_modalities(x)
    if fusion == 'sum':
        torch.testing.assert_close(fused[2], per_modality[0][2] + per_modality[1][2])
    elif fusion == 'gate':  # zero-initialised gate: the mean of the modalities
        torch.testing.assert_close(fused[3], (per_modality[0][3] + per_modality[1][3]) / 2)
    else:
        assert model.fusers[0].in_channels == 128 and model.fusers[0].out_channels == 64
    # the fused output is differentiable w.r.t. both backbones and the fusion layers
    model.train()
    sum(f.mean() for f in model(x)).backward()
    assert model.backbones[1].conv1.weight.grad.abs().sum() > 0
    if model.fusers is not None:
        assert model.fusers[0].weight.grad is not None


def test_concat_fusion_of_different_widths():
    r50 = dict(R18, depth=50)
    model = DualBackbone(backbones=[R18, r50], in_channels=(3, 1), fusion='concat',
                         fusion_channels=[32, 32, 64, 64])
    assert [c.in_channels for c in model.fusers] == [64 + 256, 128 + 512, 256 + 1024, 512 + 2048]
    assert [f.shape[1] for f in model(torch.rand(1, 4, 64, 64))] == [32, 32, 64, 64]
    # the probe forward left the training mode alone
    assert model.backbones[0].training and model.backbones[1].training


@pytest.mark.parametrize('kwargs, words', [
    (dict(fusion='mean'), '`fusion` must be one of'),
    (dict(fusion='sum', fusion_channels=[64] * 4), "only used by fusion='concat'"),
    (dict(fusion='concat', fusion_channels=[64, 64]), 'needs 4 positive channel counts'),
    (dict(fusion='sum', backbones=[R18, dict(R18, depth=50)]), 'needs equal channels per level'),
    (dict(fusion='gate', backbones=[R18, dict(R18, out_indices=(0, 1))]),
     'the same number of levels'),
])
def test_bad_fusion_configs(kwargs, words):
    kwargs = dict(dict(backbones=[R18, R18], in_channels=(3, 1)), **kwargs)
    with pytest.raises(ValueError) as err:
        DualBackbone(**kwargs)
    assert words in str(err.value)


@pytest.mark.parametrize('fusion', ['sum', 'concat', 'gate'])
def test_fusing_one_group_is_an_error_that_names_early(fusion):
    with pytest.raises(ValueError, match="has one; write fusion='early'"):
        DualBackbone(backbones=[R18], in_channels=(4, ), fusion=fusion)


def test_early_fusion_needs_one_group():
    with pytest.raises(ValueError, match=r"fusion='early'.*one group \(e.g. \(4,\)\), got \(3, 1\)"):
        DualBackbone(backbones=[R18, R18], in_channels=(3, 1), fusion='early')


def test_per_modality_consumer_rejects_the_early_pyramid():
    """What an old one-group config without `fusion` would hand a per-modality consumer."""
    early = DualBackbone(backbones=[R18], in_channels=(4, ), fusion='early')
    with pytest.raises(ValueError, match='TMAALoss: .* build DualBackbone with fusion=None'):
        MODELS.build(dict(type='TMAALoss'))(early(torch.rand(1, 4, 64, 64)))
