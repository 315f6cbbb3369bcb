"""DualBackbone: channel-group split, per-modality features, pretrained first-conv adaptation;
backbones beyond ResNet (mmdet's Swin, mmpretrain's ConvNeXt/ViT) and their shipped configs."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from pmtseg_mm.models.backbones import DualBackbone, adapt_input_channels
from pmtseg_mm.utils import drop_pretrained

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


# ----------------------------------------------------------------- backbones beyond ResNet

def _torchvision_imports() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 (absent, or a build that does not match the torch)
        return False
    return True


HAS_TORCHVISION = _torchvision_imports()
NEEDS_TORCHVISION = pytest.mark.skipif(
    not HAS_TORCHVISION, reason='mmpretrain imports torchvision, not installed here '
    '(PMTSEG_TORCHVISION=1 bash tools/install.sh, docs/install.md)')
#: A 32-d Swin of mmdet (patch embedding: a 4x4 conv of 32 filters), one block per stage.
SWIN = dict(type='SwinTransformer', embed_dims=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8),
            window_size=4, out_indices=(0, 1, 2, 3), init_cfg=None)
SWIN_SHAPES = [(2, 32, 16, 16), (2, 64, 8, 8), (2, 128, 4, 4), (2, 256, 2, 2)]
CONVNEXT = dict(type='mmpretrain.ConvNeXt',
                arch=dict(depths=[1, 1, 1, 1], channels=[16, 32, 64, 128]),
                out_indices=(0, 1, 2, 3), gap_before_final_norm=False, init_cfg=None)


def _fake_rgb_checkpoint(tmp_path, cfg: dict, name: str, prefix: str = 'backbone.') -> tuple:
    """A randomly initialised RGB backbone of ``cfg`` saved as a local checkpoint."""
    torch.manual_seed(0)
    src = MODELS.build(dict(cfg, in_channels=3))
    path = tmp_path / name
    torch.save({'state_dict': {prefix + k: v for k, v in src.state_dict().items()}}, path)
    return src, str(path)


def test_single_config_form_with_swin_for_unequal_groups():
    model = DualBackbone(backbones=SWIN, in_channels=(4, 1, 2))
    assert [b.patch_embed.projection.in_channels for b in model.backbones] == [4, 1, 2]
    feats = model(torch.rand(2, 7, 64, 64))
    assert len(feats) == 3 and all([f.shape for f in m] == SWIN_SHAPES for m in feats)


def test_swin_patch_embedding_is_adapted_from_a_local_rgb_checkpoint(tmp_path):
    """mmdet's SwinTransformer loads the checkpoint itself (it keeps the `backbone.` keys); the
    patch embedding of a 4-channel group keeps the RGB filters, a 1-channel group's is the RGB
    sum, and every other weight (attention, relative position tables) is loaded unchanged."""
    src, ckpt = _fake_rgb_checkpoint(tmp_path, SWIN, 'swin_rgb.pth')
    pretrained = dict(SWIN, init_cfg=dict(type='Pretrained', checkpoint=ckpt))
    model = DualBackbone(backbones=pretrained, in_channels=(4, 1))
    model.init_weights()
    w = src.patch_embed.projection.weight
    assert w.shape == (32, 3, 4, 4)
    ef, depth = model.backbones
    assert torch.equal(ef.patch_embed.projection.weight[:, :3], w)
    torch.testing.assert_close(ef.patch_embed.projection.weight[:, 3:],
                               w.mean(1, keepdim=True) * 0.75)
    torch.testing.assert_close(depth.patch_embed.projection.weight, w.sum(1, keepdim=True))
    for backbone in (ef, depth):
        assert torch.equal(backbone.stages[2].blocks[0].attn.w_msa.qkv.weight,
                           src.stages[2].blocks[0].attn.w_msa.qkv.weight)
        assert torch.equal(backbone.stages[1].blocks[0].attn.w_msa.relative_position_bias_table,
                           src.stages[1].blocks[0].attn.w_msa.relative_position_bias_table)
        assert torch.equal(backbone.patch_embed.projection.bias, src.patch_embed.projection.bias)
    assert model.backbones[0].init_cfg['checkpoint'] == ckpt  # the temporary copy is not kept


def test_first_layer_is_found_by_shape_not_by_name():
    """A released checkpoint names its first layer its own way (Swin: `patch_embed.proj`); the
    ConvNeXt stem is matched among 1-input-channel weights by output channels and kernel, not
    mistaken for a depthwise conv."""
    w = torch.randn(96, 3, 4, 4)
    model_state = {'downsample_layers.0.0.weight': torch.zeros(96, 1, 4, 4),
                   'stages.0.0.depthwise_conv.weight': torch.zeros(96, 1, 7, 7)}
    dw = torch.randn(96, 1, 7, 7)
    adapted = adapt_input_channels({'stem.0.weight': w, 'stages.0.0.depthwise_conv.weight': dw},
                                   model_state)
    torch.testing.assert_close(adapted['stem.0.weight'], w.sum(1, keepdim=True))
    assert adapted['stages.0.0.depthwise_conv.weight'] is dw
    # ViT: a 16x16 patch embedding into a 5-channel group, RGB first
    vit = torch.randn(64, 3, 16, 16)
    adapted = adapt_input_channels({'patch_embed.proj.weight': vit},
                                   {'patch_embed.projection.weight': torch.zeros(64, 5, 16, 16)})
    assert torch.equal(adapted['patch_embed.proj.weight'][:, :3], vit)
    torch.testing.assert_close(adapted['patch_embed.proj.weight'][:, 3:],
                               vit.mean(1, keepdim=True).repeat(1, 2, 1, 1) * 0.6)
    # a model already of 3 input channels keeps the weight; so does a shape that matches nothing
    keep = adapt_input_channels({'a': w}, {'b': torch.zeros(96, 3, 4, 4),
                                           'c': torch.zeros(8, 1, 4, 4)})
    assert keep['a'] is w


def test_a_first_layer_that_cannot_be_adapted_is_one_error(tmp_path):
    _, ckpt = _fake_rgb_checkpoint(tmp_path, dict(SWIN, embed_dims=48, num_heads=(2, 4, 8, 16)),
                                   'swin48.pth')
    model = DualBackbone(backbones=[dict(SWIN, init_cfg=dict(type='Pretrained', checkpoint=ckpt)),
                                    dict(SWIN, init_cfg=dict(type='Pretrained', checkpoint=ckpt))],
                         in_channels=(3, 1))
    with pytest.raises(ValueError) as err:
        model.init_weights()
    message = str(err.value)
    assert '`backbones[1].init_cfg`.checkpoint=' in message and '`in_channels[1]`=1' in message
    assert '[(48, 3, 4, 4)]' in message and '[(32, 1, 4, 4)]' in message
    assert model.backbones[1].init_cfg['checkpoint'] == ckpt


def test_a_checkpoint_already_of_the_group_channels_loads_as_it_is(tmp_path):
    """E.g. the depth backbone of a trained model, given again as pretrained weights."""
    torch.manual_seed(1)
    depth = MODELS.build(dict(SWIN, in_channels=1))
    ckpt = tmp_path / 'swin_depth.pth'
    torch.save({'state_dict': {'backbone.' + k: v for k, v in depth.state_dict().items()}}, ckpt)
    model = DualBackbone(backbones=[dict(SWIN, init_cfg=dict(type='Pretrained',
                                                             checkpoint=str(ckpt)))],
                         in_channels=(1, ))
    model.init_weights()
    loaded = model.backbones[0].state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in depth.state_dict().items())


@pytest.mark.skipif(HAS_TORCHVISION, reason='the error for a missing torchvision')
def test_mmpretrain_backbone_without_torchvision_is_one_error():
    with pytest.raises(ModuleNotFoundError) as err:
        DualBackbone(backbones=[R18, CONVNEXT], in_channels=(3, 1))
    assert "`backbones[1].type`='mmpretrain.ConvNeXt' needs torchvision" in str(err.value)
    assert 'PMTSEG_TORCHVISION=1 bash tools/install.sh' in str(err.value)


@NEEDS_TORCHVISION
def test_mmpretrain_backbones_run_inside_dual_backbone(tmp_path):
    """ConvNeXt per modality (fusion=None and 'concat'); its stem and a ViT patch embedding are
    adapted from local fake RGB checkpoints through mmpretrain's own loading."""
    model = DualBackbone(backbones=CONVNEXT, in_channels=(3, 1))
    feats = model(torch.rand(2, 4, 64, 64))
    expected = [(2, 16, 16, 16), (2, 32, 8, 8), (2, 64, 4, 4), (2, 128, 2, 2)]
    assert [[tuple(f.shape) for f in m] for m in feats] == [expected, expected]
    concat = DualBackbone(backbones=[CONVNEXT, SWIN], in_channels=(3, 1), fusion='concat')
    assert [f.shape[1] for f in concat(torch.rand(1, 4, 64, 64))] == [16, 32, 64, 128]

    src, ckpt = _fake_rgb_checkpoint(tmp_path, CONVNEXT, 'convnext_rgb.pth')
    pretrained = dict(CONVNEXT,
                      init_cfg=dict(type='Pretrained', checkpoint=ckpt, prefix='backbone.'))
    model = DualBackbone(backbones=pretrained, in_channels=(4, 1))
    model.init_weights()
    w = src.downsample_layers[0][0].weight
    assert torch.equal(model.backbones[0].downsample_layers[0][0].weight[:, :3], w)
    torch.testing.assert_close(model.backbones[1].downsample_layers[0][0].weight,
                               w.sum(1, keepdim=True))
    assert torch.equal(model.backbones[1].stages[3][0].depthwise_conv.weight,
                       src.stages[3][0].depthwise_conv.weight)

    vit_cfg = dict(type='mmpretrain.VisionTransformer', arch=dict(embed_dims=32, num_layers=1,
                   num_heads=2, feedforward_channels=64), img_size=64, patch_size=16,
                   out_type='featmap', init_cfg=None)
    src, ckpt = _fake_rgb_checkpoint(tmp_path, vit_cfg, 'vit_rgb.pth')
    vit = DualBackbone(backbones=dict(vit_cfg, init_cfg=dict(type='Pretrained', checkpoint=ckpt,
                                                             prefix='backbone.')),
                       in_channels=(1, ))
    vit.init_weights()
    torch.testing.assert_close(vit.backbones[0].patch_embed.projection.weight,
                               src.patch_embed.projection.weight.sum(1, keepdim=True))
    assert vit(torch.rand(1, 1, 64, 64))[0][0].shape == (1, 32, 4, 4)


ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BACKBONE_CONFIGS = sorted(p for family in ('pmtseg', 'baselines')
                          for name in ('swin', 'convnext')
                          for p in glob.glob(osp.join(ROOT, 'configs', family, f'*_{name}-*.py')))
TINY_SWIN = osp.join(ROOT, 'configs', 'pmtseg',
                     'pmtseg_swin-d32-tiny_1xb4-1000it_synthetic-depth-128x128.py')


def _built(path: str):
    cfg = Config.fromfile(path)
    drop_pretrained(cfg.model)
    torch.manual_seed(0)
    return cfg, MODELS.build(cfg.model)


@pytest.mark.parametrize('path', BACKBONE_CONFIGS,
                         ids=[osp.basename(p).split('_1xb4')[0] for p in BACKBONE_CONFIGS])
def test_every_shipped_backbone_config_builds(path):
    if 'convnext' in osp.basename(path) and not HAS_TORCHVISION:
        pytest.skip('mmpretrain.ConvNeXt: mmpretrain imports torchvision, not installed here '
                    '(PMTSEG_TORCHVISION=1 bash tools/install.sh, docs/install.md)')
    cfg, model = _built(path)
    backbone = model.backbone
    assert isinstance(backbone, DualBackbone)
    early = backbone.fusion == 'early'
    assert backbone.in_channels == ((4, ) if early else (3, 1))
    kind = 'ConvNeXt' if 'convnext' in path else 'SwinTransformer'
    assert all(type(b).__name__ == kind for b in backbone.backbones)
    # the per-level channels the backbones give are the ones the neck / head is built for
    backbone.eval()
    with torch.no_grad():
        feats = backbone(torch.zeros(1, 4, 64, 64))
    channels = [f.shape[1] for f in feats] if early else [[f.shape[1] for f in m] for m in feats]
    expected = cfg.model.panoptic_head.in_channels if early else cfg.model.neck.in_channels
    assert channels == [list(c) if not early else c for c in expected]
    tiny = 'tiny' in osp.basename(path)
    assert (channels[0] if not early else channels) == ([32, 64, 128, 256] if tiny else
                                                        [96, 192, 384, 768])
    # the real pretrained links are kept for users (drop_pretrained removed them from the copy)
    original = Config.fromfile(path).model.backbone.backbones
    assert all((b.init_cfg is None) == tiny for b in original)


def _synthetic_sample(size: int = 64) -> DetDataSample:
    """Two buildings and a car (things 0-2) on road/grass (stuff 3-4)."""
    sem = torch.full((size, size), 3, dtype=torch.long)
    sem[size // 2:] = 4
    masks = np.zeros((3, size, size), dtype=np.uint8)
    for k, (y0, y1, x0, x1) in enumerate([(0, 16, 0, 16), (0, 16, 32, 48), (40, 48, 8, 24)]):
        masks[k, y0:y1, x0:x1] = 1
    labels = torch.tensor([0, 0, 2])
    for k in range(3):
        sem[torch.from_numpy(masks[k]).bool()] = labels[k]
    sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                         pad_shape=(size, size), batch_input_shape=(size, size)))
    sample.gt_instances = InstanceData(labels=labels, masks=BitmapMasks(masks, size, size))
    sample.gt_sem_seg = PixelData(sem_seg=sem[None])
    return sample


def test_cpu_sized_swin_pmtseg_takes_a_loss_and_a_predict_step():
    _, model = _built(TINY_SWIN)
    inputs = torch.rand(2, 4, 64, 64)
    losses = model.loss(inputs, [_synthetic_sample(), _synthetic_sample()])
    assert {'loss_tmaa', 'loss_con', 'loss_cls', 'loss_mask', 'loss_dice'} <= set(losses)
    assert all(torch.isfinite(v).all() for v in losses.values())
    sum(losses.values()).backward()
    for swin in model.backbone.backbones:  # both Swin patch embeddings get gradients
        assert swin.patch_embed.projection.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs[:1], [_synthetic_sample()])
    sem = results[0].pred_sem_seg.sem_seg
    assert sem.shape == (1, 64, 64) and 0 <= int(sem.min()) and int(sem.max()) < 6
    assert results[0].pred_panoptic_seg.sem_seg.shape == (1, 64, 64)
    assert results[0].pred_instances.masks.shape[1:] == (64, 64)
