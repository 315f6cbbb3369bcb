"""Every config under configs/ parses, its model builds and its pipelines' transforms build (in
the config's own default scope: mmdet, or mmseg for configs/mmseg/); every panoptic dataset
config scores with the package's MultiTask* metrics."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, TRANSFORMS, DefaultScope

from pmtseg_mm.utils import drop_pretrained

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)
DATASET_BASES = sorted(p for p in glob.glob(osp.join(ROOT, 'configs', '_base_', 'datasets', '*.py'))
                       if not p.endswith('multitask_evaluator.py'))
MULTITASK = ['MultiTaskCocoPanopticMetric', 'MultiTaskCocoMetric', 'MultiTaskSemSegMetric']


def _ids(paths):
    return [osp.relpath(p, ROOT) for p in paths]


def test_configs_found():
    assert len(CONFIGS) >= 4 and len(DATASET_BASES) >= 4


@pytest.mark.parametrize('path', CONFIGS, ids=_ids(CONFIGS))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    assert cfg.custom_imports['imports'] == ['pmtseg_mm']
    drop_pretrained(cfg.model)  # pretrained links need internet
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        model = MODELS.build(cfg.model)
        assert sum(p.numel() for p in model.parameters()) > 0
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            for step in cfg[loader].dataset.pipeline:
                TRANSFORMS.build(step)
    channels = tuple(cfg.model.data_preprocessor.modality_channels)
    loaded = tuple(opts.get('channels') for opts in cfg.train_dataloader.dataset.pipeline[0]
                   .modalities.values())
    assert channels == loaded, 'preprocessor modality_channels must match the loaded channels'


def _evaluator_types(evaluator):
    return [e['type'] for e in (evaluator if isinstance(evaluator, list) else [evaluator])]


@pytest.mark.parametrize('path', DATASET_BASES + [p for p in CONFIGS if '/mmseg/' not in p],
                         ids=_ids(DATASET_BASES + [p for p in CONFIGS if '/mmseg/' not in p]))
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
