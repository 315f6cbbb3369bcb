"""MultiModalInferencer with checkpoints that carry no ``meta.dataset_meta`` (e.g. saved by hand
or converted): class names and palette from the config's dataset class, else from
``model.panoptic_head.class_names`` with a seeded palette, else one error naming both."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmengine.config import Config

from pmtseg_mm.apis import MultiModalInferencer
from pmtseg_mm.datasets.synthetic import SYNTHETIC_METAINFO

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py')
EF_TINY = osp.join(ROOT, 'configs/baselines/'
                   'mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py')


@pytest.fixture(scope='module')
def bare_checkpoint(tmp_path_factory):
    """The tiny model's weights with an empty ``meta`` (no dataset_meta)."""
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TINY).model)
    path = str(tmp_path_factory.mktemp('ckpt') / 'bare.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path, model.state_dict()


def test_classes_and_palette_from_the_dataset_class(bare_checkpoint):
    path, state = bare_checkpoint
    inferencer = MultiModalInferencer(TINY, path, device='cpu')
    assert inferencer.dataset_meta['classes'] == SYNTHETIC_METAINFO['classes']
    assert [tuple(c) for c in inferencer.dataset_meta['palette']] == [
        tuple(c) for c in SYNTHETIC_METAINFO['palette']]
    loaded = inferencer.model.state_dict()
    assert all(torch.equal(loaded[k].cpu(), v) for k, v in state.items())  # the weights did load
    data = dict(optical=np.zeros((64, 64, 3), np.uint8), depth=np.zeros((64, 64), np.float32))
    pred = inferencer(data, tasks=('semantic', ))['predictions'][0]
    assert pred['semantic'].shape == (64, 64)
    assert set(np.unique(pred['semantic'])) <= set(range(len(SYNTHETIC_METAINFO['classes'])))


def test_class_names_of_the_head_then_an_error(bare_checkpoint):
    path, _ = bare_checkpoint
    cfg = Config.fromfile(TINY)
    cfg.test_dataloader.dataset.type = None  # no dataset class to take METAINFO from
    inferencer = MultiModalInferencer(cfg, path, device='cpu')
    assert inferencer.dataset_meta['classes'] == tuple(cfg.model.panoptic_head.class_names)
    rng = np.random.RandomState(0)  # the documented seeded palette, one colour per class
    assert inferencer.dataset_meta['palette'] == [
        tuple(int(v) for v in rng.randint(0, 256, 3)) for _ in range(6)]
    given = [(i, i, i) for i in range(6)]
    assert MultiModalInferencer(cfg, path, device='cpu', palette=given).dataset_meta[
        'palette'] == given
    # a head without class names (the stock Mask2Former baseline), no weights' meta either
    ef = Config.fromfile(EF_TINY)
    ef.test_dataloader.dataset.type = None
    with pytest.raises(KeyError, match=r'no class names: the checkpoint has no '
                       r'`meta.dataset_meta` and the config neither a dataset type with METAINFO '
                       r'nor `model.panoptic_head.class_names`'):
        MultiModalInferencer(ef, None, device='cpu')


def test_checkpoint_meta_wins(bare_checkpoint, tmp_path):
    path, state = bare_checkpoint
    names = ('roof', 'tree', 'car', 'road', 'lawn', 'pond')
    with_meta = str(tmp_path / 'meta.pth')
    torch.save(dict(state_dict=state, meta=dict(dataset_meta=dict(classes=names))), with_meta)
    meta = MultiModalInferencer(TINY, with_meta, device='cpu').dataset_meta
    assert meta['classes'] == names and len(meta['palette']) == 6
