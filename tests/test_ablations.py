"""Every config under configs/ablations/ builds from its tiny-PMTSeg base, runs one loss step and
one predict step on generated 64x64 inputs, and changes what its table says it changes."""
import functools
import glob
import os.path as osp
from typing import Optional

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from pmtseg_mm.models.necks import SumFusionNeck, TMSFNeck
from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
ABLATIONS = osp.join(ROOT, 'configs', 'ablations')
CONFIGS = sorted(glob.glob(osp.join(ABLATIONS, '*.py')))
MAIN = osp.join(ROOT, 'configs', 'pmtseg', 'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py')
SIZE = 64


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """28 small models: one intra-op thread each is fastest and immune to oversubscription."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def name(path: str) -> str:
    """'tab4-tmaa' for .../pmtseg_r18-tiny_tab4-tmaa_synthetic-depth-128x128.py."""
    return osp.basename(path).split('_')[2]


def load(path: str) -> Config:
    cfg = Config.fromfile(path)
    drop_pretrained(cfg.model)
    cfg.model.data_preprocessor.batch_augments = None  # keep the generated 64x64 inputs
    return cfg


def build(path: str, part: Optional[str] = None):
    """The model of a config (or its ``part``, e.g. 'tmaa_loss'), seeded."""
    torch.manual_seed(0)
    cfg = load(path).model
    return MODELS.build(cfg if part is None else cfg[part])


def data_batch(channels: int, batch_size: int = 2) -> dict:
    """Generated scenes: road/grass stuff, two buildings and a car (things), per-channel noise."""
    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for b in range(batch_size):
        sem = torch.full((SIZE, SIZE), 3, dtype=torch.long)
        sem[SIZE // 2:] = 4
        masks = np.zeros((3, SIZE, SIZE), dtype=np.uint8)
        for k, (y0, y1, x0, x1) in enumerate([(4, 20, 4, 20), (4, 20, 36, 52), (44, 52, 8, 24)]):
            masks[k, y0 + b:y1 + b, x0:x1] = 1
        labels = torch.tensor([0, 0, 2])
        for k in range(3):
            sem[torch.from_numpy(masks[k]).bool()] = labels[k]
        sample = DetDataSample(metainfo=dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
        sample.gt_instances = InstanceData(labels=labels, masks=BitmapMasks(masks, SIZE, SIZE),
                                           bboxes=torch.zeros(3, 4))
        sample.gt_sem_seg = PixelData(sem_seg=sem[None])
        samples.append(sample)
        # 8-bit optical, then heights above ground within the depth statistics (mean 1, std 3 m):
        # the preprocessor refuses a median beyond `max_median_std`
        scale = torch.tensor([255.] * 3 + [10.] * (channels - 3) if channels >= 3 else [10.])
        inputs.append(torch.rand(channels, SIZE, SIZE, generator=g) * scale[:, None, None])
    return dict(inputs=inputs, data_samples=samples)


def test_every_row_has_a_config():
    names = {name(p) for p in CONFIGS}
    expected = {'tab4-baseline', 'tab4-tmaa', 'tab4-tmsf', 'tab4-tmaa-tmsf', 'tab4-psh',
                'tab4-psh-tmaa', 'tab4-psh-tmsf', 'tab4-dual-sum', 'tab5-separate-heads',
                'tab6-tmaa-ed', 'tab6-tmaa-kl', 'tab7-tmsf-2layers', 'tab7-tmsf-3layers',
                'tab8-optical-only', 'tab8-depth-only', 'tab9-scales-4', 'tab9-scales-4-8',
                'tab9-scales-4-8-16', 'tab10-no-lcon', 'tab11-lv', 'tab11-nt', 'fig6-alpha1',
                'fig6-alpha3', 'fig6-alpha7', 'fig6-alpha10', 'lcon-batch', 'lcon-literal',
                'tmaa-level0',
                'tmaa-level3', 'cost-enc3', 'cost-enc6', 'cost-kv64', 'psh-panoptic-only'}
    assert names == expected
    readme = open(osp.join(ABLATIONS, 'README.md')).read()
    assert all(osp.basename(p) in readme for p in CONFIGS)


#: What each config may change relative to the main tiny config (flattened config keys).
HEAD_SWITCH = ('model.panoptic_head.prompt_mode', 'model.panoptic_head.task_probs')
SUM_NECK = ('model.neck', )
EARLY_FUSION = ('model.backbone', 'model.tmaa_loss') + SUM_NECK
SINGLE = ('model.data_preprocessor', 'model.backbone', 'model.neck.num_modalities',
          'model.neck.in_channels', 'modalities', 'train_pipeline', 'test_pipeline',
          'train_dataloader.dataset.pipeline', 'val_dataloader.dataset.pipeline',
          'test_dataloader.dataset.pipeline')
ALLOWED = {
    'tab4-baseline': EARLY_FUSION + HEAD_SWITCH,
    'tab4-tmaa': SUM_NECK + HEAD_SWITCH,
    'tab4-tmsf': ('model.tmaa_loss', ) + HEAD_SWITCH,
    'tab4-tmaa-tmsf': HEAD_SWITCH,
    'tab4-psh': EARLY_FUSION,
    'tab4-psh-tmaa': SUM_NECK,
    'tab4-psh-tmsf': ('model.tmaa_loss', ),
    'tab4-dual-sum': ('model.tmaa_loss', ) + SUM_NECK + HEAD_SWITCH,
    'tab5-separate-heads': ('model.panoptic_head.type', ) + HEAD_SWITCH,
    'tab6-tmaa-ed': ('model.tmaa_loss.mode', ),
    'tab6-tmaa-kl': ('model.tmaa_loss.mode', ),
    'tab7-tmsf-2layers': ('model.neck.num_layers', ),
    'tab7-tmsf-3layers': ('model.neck.num_layers', ),
    'tab8-optical-only': SINGLE,
    'tab8-depth-only': SINGLE,
    'tab9-scales-4': ('model.neck.scales', ),
    'tab9-scales-4-8': ('model.neck.scales', ),
    'tab9-scales-4-8-16': ('model.neck.scales', ),
    'tab10-no-lcon': ('model.panoptic_head.use_contrastive', ),
    'tab11-lv': ('model.panoptic_head.prompt_mode', ),
    'tab11-nt': ('model.panoptic_head.prompt_mode', ),
    'fig6-alpha1': ('model.tmaa_loss.loss_weight', ),
    'fig6-alpha3': ('model.tmaa_loss.loss_weight', ),
    'fig6-alpha7': ('model.tmaa_loss.loss_weight', ),
    'fig6-alpha10': ('model.tmaa_loss.loss_weight', ),
    'lcon-batch': ('model.panoptic_head.contrastive_level', ),
    'lcon-literal': ('model.panoptic_head.contrastive_form', ),
    'tmaa-level0': ('model.tmaa_loss.levels', ),
    'tmaa-level3': ('model.tmaa_loss.levels', ),
    'cost-enc3': ('model.neck.pixel_decoder.encoder.num_layers', ),
    'cost-enc6': ('model.neck.pixel_decoder.encoder.num_layers', ),
    'cost-kv64': ('model.neck.max_kv_tokens', ),
    'psh-panoptic-only': ('model.panoptic_head.task_probs', ),
}
#: The values each config sets (the changed keys, removed ones left out).
_NO_PSH = {'model.panoptic_head.prompt_mode': 'none', 'model.panoptic_head.task_probs': None}
_NO_TMAA = {'model.tmaa_loss': None}
_SUM = {'model.neck.type': 'SumFusionNeck'}
_EARLY = {'model.backbone.in_channels': (4, ), 'model.neck.in_channels': [[64, 128, 256, 512]],
          'model.neck.num_modalities': 1, **_SUM, **_NO_TMAA}
_ONE = {'model.neck.in_channels': [[64, 128, 256, 512]], 'model.neck.num_modalities': 1}
VALUES = {
    'tab4-baseline': {**_EARLY, **_NO_PSH},
    'tab4-tmaa': {**_SUM, **_NO_PSH},
    'tab4-tmsf': {**_NO_TMAA, **_NO_PSH},
    'tab4-tmaa-tmsf': _NO_PSH,
    'tab4-psh': _EARLY,
    'tab4-psh-tmaa': _SUM,
    'tab4-psh-tmsf': _NO_TMAA,
    'tab4-dual-sum': {**_NO_TMAA, **_SUM, **_NO_PSH},
    'tab5-separate-heads': {'model.panoptic_head.type': 'SeparateTaskHeads', **_NO_PSH},
    'tab6-tmaa-ed': {'model.tmaa_loss.mode': 'ed'},
    'tab6-tmaa-kl': {'model.tmaa_loss.mode': 'kl'},
    'tab7-tmsf-2layers': {'model.neck.num_layers': 2},
    'tab7-tmsf-3layers': {'model.neck.num_layers': 3},
    'tab8-optical-only': {'model.backbone.in_channels': (3, ), **_ONE,
                          'model.data_preprocessor.modality_channels': (3, ),
                          'model.data_preprocessor.mean': [[123.675, 116.28, 103.53]],
                          'model.data_preprocessor.std': [[58.395, 57.12, 57.375]]},
    'tab8-depth-only': {'model.backbone.in_channels': (1, ), **_ONE,
                        'model.data_preprocessor.modality_channels': (1, ),
                        'model.data_preprocessor.mean': [[1.0171]],
                        'model.data_preprocessor.std': [[3.0499]],
                        'model.data_preprocessor.bgr_to_rgb': False},
    'tab9-scales-4': {'model.neck.scales': (4, )},
    'tab9-scales-4-8': {'model.neck.scales': (4, 8)},
    'tab9-scales-4-8-16': {'model.neck.scales': (4, 8, 16)},
    'tab10-no-lcon': {'model.panoptic_head.use_contrastive': False},
    'tab11-lv': {'model.panoptic_head.prompt_mode': 'lv'},
    'tab11-nt': {'model.panoptic_head.prompt_mode': 'nt'},
    'fig6-alpha1': {'model.tmaa_loss.loss_weight': 1.0},
    'fig6-alpha3': {'model.tmaa_loss.loss_weight': 3.0},
    'fig6-alpha7': {'model.tmaa_loss.loss_weight': 7.0},
    'fig6-alpha10': {'model.tmaa_loss.loss_weight': 10.0},
    'lcon-batch': {'model.panoptic_head.contrastive_level': 'batch'},
    'lcon-literal': {'model.panoptic_head.contrastive_form': 'literal'},
    'tmaa-level0': {'model.tmaa_loss.levels': (0, )},
    'tmaa-level3': {'model.tmaa_loss.levels': (3, )},
    'cost-enc3': {'model.neck.pixel_decoder.encoder.num_layers': 3},
    'cost-enc6': {'model.neck.pixel_decoder.encoder.num_layers': 6},
    'cost-kv64': {'model.neck.max_kv_tokens': 64},
    'psh-panoptic-only': {'model.panoptic_head.task_probs.panoptic': 1.0},
}
#: The one modality the pipelines of the single-modality rows load.
MODALITY = {'tab8-optical-only': 'optical', 'tab8-depth-only': 'depth'}
#: (backbones, neck, prompt_mode, L_TMAA, L_CON) per Table IV row: the modules it has.
TABLE_IV = {
    'tab4-baseline': (1, SumFusionNeck, 'none', False, False),
    'tab4-tmaa': (2, SumFusionNeck, 'none', True, False),
    'tab4-tmsf': (2, TMSFNeck, 'none', False, False),
    'tab4-tmaa-tmsf': (2, TMSFNeck, 'none', True, False),
    'tab4-psh': (1, SumFusionNeck, 'psh', False, True),
    'tab4-psh-tmaa': (2, SumFusionNeck, 'psh', True, True),
    'tab4-psh-tmsf': (2, TMSFNeck, 'psh', False, True),
    'tab4-dual-sum': (2, SumFusionNeck, 'none', False, False),
}


def flatten(value, prefix=''):
    if isinstance(value, dict):
        items = {}
        for key, sub in value.items():
            items.update(flatten(sub, f'{prefix}.{key}' if prefix else key))
        return items
    return {prefix: value}


@functools.lru_cache(maxsize=1)
def main_flat() -> dict:
    return flatten(Config.fromfile(MAIN).to_dict())


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize('path', CONFIGS, ids=[name(p) for p in CONFIGS])
def test_config_changes_only_its_switches(path):
    text = open(path).read()
    assert text.count(
        "_base_ = '../pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'") == 1
    main = main_flat()
    ablation = flatten(Config.fromfile(path).to_dict())
    changed = {k for k in main.keys() | ablation.keys()
               if k != 'filename' and main.get(k, '<absent>') != ablation.get(k, '<absent>')}
    assert changed, 'an ablation config must change something'
    allowed = ALLOWED[name(path)]
    assert {k for k in changed if not k.startswith(allowed)} == set()
    # ... and to the values of its row: every changed key that is set (not removed), except the
    # pipelines and backbone lists (checked through the loaded modalities and in_channels)
    values = {k: ablation[k] for k in changed if k in ablation and not k.endswith(
        ('pipeline', 'model.backbone.backbones'))}
    assert values == VALUES[name(path)]
    loaded = {key: list(ablation[key][0]['modalities']) for key in changed
              if key.endswith('pipeline')}
    assert len(loaded) == (5 if name(path) in MODALITY else 0)
    assert all(mods == [MODALITY[name(path)]] for mods in loaded.values())


@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS, ids=[name(p) for p in CONFIGS])
def test_config_runs_loss_and_predict(path):
    model = build(path)
    channels = sum(model.data_preprocessor.modality_channels)
    model.train()
    data = model.data_preprocessor(data_batch(channels), True)
    losses = model(**data, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(k.endswith('loss_mask') for k in losses)
    row = TABLE_IV.get(name(path))
    if row is not None:
        backbones, neck, mode, tmaa, con = row
        assert len(model.backbone.backbones) == backbones and type(model.neck) is neck
        assert model.panoptic_head.prompt_mode == mode
        assert ('loss_tmaa' in losses) == tmaa and ('loss_con' in losses) == con
    if name(path).startswith('tab8'):
        assert losses['loss_tmaa'].item() == 0.0 and len(model.backbone.backbones) == 1
    if name(path) in ('tab10-no-lcon', 'tab11-lv', 'tab11-nt', 'tab5-separate-heads'):
        assert 'loss_con' not in losses
    model.eval()
    with torch.no_grad():
        results = model.test_step(data_batch(channels, batch_size=1))
    (result, ) = results
    assert result.pred_sem_seg.sem_seg.shape == (1, SIZE, SIZE)
    assert result.pred_panoptic_seg.sem_seg.shape == (1, SIZE, SIZE)
    assert result.pred_instances.masks.shape[1:] == (SIZE, SIZE)


def by_name(row: str, part: Optional[str] = None):
    return build(osp.join(ABLATIONS, f'pmtseg_r18-tiny_{row}_synthetic-depth-128x128.py'), part)


def test_switches_change_the_model():
    main = build(MAIN)
    # Table VII: more cross-attention layers, more parameters (the neck is all that changes)
    layers = [count(build(MAIN, 'neck'))] + [
        count(by_name(f'tab7-tmsf-{n}layers', 'neck')) for n in (2, 3)]
    assert layers[0] < layers[1] < layers[2] and layers[2] - layers[1] == layers[1] - layers[0]
    # Table IX: cross-attention only at the listed scales
    assert [f.attend for f in by_name('tab9-scales-4-8', 'neck').fusions] == [
        True, True, False, False]
    # Table V: shared trunk, three plain heads = 3x the head of PMTSeg w/o PSH
    separate, plain = by_name('tab5-separate-heads'), by_name('tab4-tmaa-tmsf')
    assert count(separate.panoptic_head) == 3 * count(plain.panoptic_head)
    assert count(separate) - count(separate.panoptic_head) == count(plain) - count(
        plain.panoptic_head)
    # Table X vs XI: w/o L_CON keeps the task MLP that NT does not have
    assert count(by_name('tab10-no-lcon')) - count(by_name('tab11-nt')) == count(
        main.panoptic_head.task_mlp)
    # batch-level L_CON: task-specific padding texts
    assert by_name('lcon-batch').panoptic_head.label_texts[-1] == \
        'RS data without a matched segment for panoptic'
    assert (by_name('lcon-literal').panoptic_head.loss_con.form,
            main.panoptic_head.loss_con.form) == ('literal', 'multi_positive')


def test_tmaa_variants_differ_on_the_same_features():
    g = torch.Generator().manual_seed(0)
    feats = [[torch.randn(2, c, 32 // 2**i, 32 // 2**i, generator=g)
              for i, c in enumerate((64, 128, 256, 512))] for _ in range(2)]
    values = {row: by_name(row, 'tmaa_loss')(feats).item()
              for row in ('tab6-tmaa-ed', 'tab6-tmaa-kl', 'fig6-alpha1', 'tmaa-level3')}
    js = build(MAIN, 'tmaa_loss')(feats).item()
    assert len({round(v, 6) for v in [js, *values.values()]}) == 5
    assert values['fig6-alpha1'] == pytest.approx(js / 5, rel=1e-6)  # alpha scales L_TMAA
