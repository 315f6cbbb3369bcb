"""Every config under configs/ parses, its model builds and its pipelines' transforms build (in
the config's own default scope: mmdet, or mmseg for configs/mmseg/); every panoptic dataset
config scores with the package's MultiTask* metrics; every dataset base fills the shared data
section (multimodal_pipeline.py) and every panoptic config takes its class counts from it."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, TRANSFORMS, DefaultScope

from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
SHARED_DATA = osp.join(ROOT, 'configs', '_base_', 'datasets', 'multimodal_pipeline.py')
DATASET_BASES = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '_base_', 'datasets', '*.py'))
                       if not p.endswith(('multitask_evaluator.py', 'multimodal_pipeline.py')))
PANOPTIC = [p for p in CONFIGS if '/mmseg/' not in p]
MULTITASK = ['MultiTaskCocoPanopticMetric', 'MultiTaskCocoMetric', 'MultiTaskSemSegMetric']


def _ids(paths):
    return [osp.relpath(p, ROOT) for p in paths]


def resnet_parameters(depth: int, in_channels: int, deep_stem: bool = False) -> int:
    """Weights + BN affine parameters of a ResNet-18/50 without its classifier, by hand: the stem
    (7x7 conv, or ResNetV1c's three 3x3 convs 32-32-64), then per stage of width w (64..512)
    basic blocks (two 3x3 convs of w) or bottlenecks (1x1 w, 3x3 w, 1x1 4w), the first block
    of a stage with a 1x1 projection when its input width or stride differs."""
    if deep_stem:
        count = 32 * in_channels * 9 + 64 + 32 * 32 * 9 + 64 + 64 * 32 * 9 + 128
    else:
        count = 64 * in_channels * 7 * 7 + 128
    blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}[depth]
    cin = 64
    for stage, (width, num) in enumerate(zip((64, 128, 256, 512), blocks)):
        for b in range(num):
            if depth < 50:
                out = width
                count += cin * width * 9 + 2 * width + width * width * 9 + 2 * width
            else:
                out = 4 * width
                count += (cin * width + 2 * width + width * width * 9 + 2 * width +
                          width * out + 2 * out)
            if b == 0 and (cin != out or stage > 0):
                count += cin * out + 2 * out
            cin = out
    return count


def test_resnet_hand_count_matches_torchvision_numbers():
    # torchvision's published totals less the 1000-way fc (512*1000+1000, 2048*1000+1000)
    assert resnet_parameters(18, 3) == 11_689_512 - 513_000
    assert resnet_parameters(50, 3) == 25_557_032 - 2_049_000


def test_configs_found():
    assert len(CONFIGS) >= 4 and len(DATASET_BASES) >= 4


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_config_builds(path, skip_without_torchvision):
    cfg = Config.fromfile(path)
    skip_without_torchvision(cfg)
    assert cfg.custom_imports['imports'] == ['pmtseg_mm']
    drop_pretrained(cfg.model)  # pretrained links need internet
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
        # each ResNet branch has the parameter count counted by hand; any other backbone (Swin,
        # ConvNeXt) takes its group's channels in its first layer
        branches = [cfg.model.backbone] if 'backbones' not in cfg.model.backbone else (
            cfg.model.backbone.backbones)
        assert len(model.backbone.backbones) == len(branches) == len(
            cfg.model.backbone.in_channels)
        for module, branch, channels in zip(model.backbone.backbones, branches,
                                            cfg.model.backbone.in_channels):
            if branch.type in ('ResNet', 'ResNetV1c'):
                assert sum(p.numel() for p in module.parameters()) == resnet_parameters(
                    branch.depth, channels, deep_stem=branch.type == 'ResNetV1c'), branch
            else:
                first = next(p for p in module.parameters() if p.dim() == 4)
                assert first.shape[1] == channels, branch.type
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            for step in cfg[loader].dataset.pipeline:
                TRANSFORMS.build(step)
    channels = tuple(cfg.model.data_preprocessor.modality_channels)
    loaded = tuple(opts.get('channels') for opts in cfg.train_dataloader.dataset.pipeline[0]
                   .modalities.values())
    assert channels == loaded, 'preprocessor modality_channels must match the loaded channels'


def _evaluator_types(evaluator):
    return [e['type'] for e in (evaluator if isinstance(evaluator, list) else [evaluator])]


@pytest.mark.parametrize('path', DATASET_BASES + PANOPTIC, ids=_ids(DATASET_BASES + PANOPTIC))
def test_panoptic_configs_use_the_multitask_metrics(path):
    """mmdet's CocoPanopticMetric/CocoMetric/SemSegMetric mis-score these datasets (aAcc = mAcc,
    in-place VOID writes, labels by order, no mIoU for baselines): only the fixed ones."""
    cfg = Config.fromfile(path)
    for key in ('val_evaluator', 'test_evaluator'):
        assert _evaluator_types(cfg[key]) == MULTITASK, f'{key} of {path}'
        panoptic, instance, semantic = cfg[key]
        assert (panoptic.prefix, instance.prefix, semantic.prefix) == ('panoptic', 'instance',
                                                                       'semantic')
        split = 'test' if key == 'test_evaluator' and 'test' in cfg.test_dataloader.dataset.ann_file \
            else 'val'
        assert panoptic.ann_file.endswith(f'annotations/panoptic_{split}.json')
        assert panoptic.seg_prefix.endswith(f'annotations/panoptic_{split}/')
        assert instance.ann_file.endswith(f'annotations/instances_{split}.json')
        root = cfg[key.replace('evaluator', 'dataloader')].dataset.data_root
        assert panoptic.ann_file.startswith(root) and instance.ann_file.startswith(root)


def _nones(node, path=''):
    """Paths of the None or empty-dict leaves of a config tree (the shared base's placeholders
    left unset)."""
    if isinstance(node, dict):
        return [q for k, v in node.items() if k != 'backend_args'
                for q in _nones(v, f'{path}.{k}')] or ([path] if not node else [])
    if isinstance(node, (list, tuple)):
        return [q for i, v in enumerate(node) for q in _nones(v, f'{path}[{i}]')]
    return [path] if node is None else []


@pytest.mark.parametrize('path', DATASET_BASES, ids=_ids(DATASET_BASES))
def test_dataset_base_fills_the_shared_data_section(path):
    """No placeholder left; the shared steps in their order; the loaders run the filled
    pipelines (a forgotten refill would leave the shared base's placeholders in a loader)."""
    cfg, shared = Config.fromfile(path), Config.fromfile(SHARED_DATA)
    keys = ('train_pipeline', 'test_pipeline', 'train_dataloader', 'val_dataloader',
            'test_dataloader', 'val_evaluator', 'test_evaluator', 'dataset_model')
    assert [q for key in keys for q in _nones(cfg[key], key)] == []
    for key in ('train_pipeline', 'test_pipeline'):
        assert [t.type for t in cfg[key]] == [t.type for t in shared[key]]
    assert cfg.train_dataloader.dataset.pipeline == cfg.train_pipeline
    for loader in ('val_dataloader', 'test_dataloader'):
        assert cfg[loader].dataset.pipeline == cfg.test_pipeline
    modalities = list(cfg.train_pipeline[0].modalities)  # what LoadMultiModalImages loads
    assert list(cfg.test_pipeline[0].modalities) == modalities
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        assert list(cfg[loader].dataset.modalities)[:len(modalities)] == modalities


@pytest.mark.parametrize('path', PANOPTIC, ids=_ids(PANOPTIC))
def test_panoptic_config_takes_the_dataset_classes(path):
    cfg = Config.fromfile(path)
    head, fusion = cfg.model.panoptic_head, cfg.model.panoptic_fusion_head
    things, stuff = cfg.num_things_classes, cfg.num_stuff_classes
    assert (head.num_things_classes, head.num_stuff_classes) == (things, stuff)
    assert (fusion.num_things_classes, fusion.num_stuff_classes) == (things, stuff)
    assert head.loss_cls.class_weight == [1.0] * (things + stuff) + [0.1]
    assert len(cfg.class_names) == things + stuff
    if head.type == 'PSHHead':
        assert tuple(head.class_names) == tuple(cfg.class_names)
    pre = cfg.model.data_preprocessor
    assert pre.batch_augments[0].size == cfg.image_size
