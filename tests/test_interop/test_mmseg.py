"""MMSegmentation interop: the shared parts in mmseg's registries, DualBackbone fusion under an
mmseg EncoderDecoder + UPerHead, the TMAA auxiliary loss, semantic multimodal data."""
import copy
import json
import os.path as osp
import random

import mmcv
import numpy as np
import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TRANSFORMS as MMDET_TRANSFORMS
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData
from panopticapi.utils import rgb2id

from pmtseg_mm.datasets.synthetic import generate_synthetic
from pmtseg_mm.segmentation import MultiModalSegDataset, panoptic_to_semantic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs', 'mmseg',
                'upernet_dual-r18-tiny-concat_1xb4-300it_synthetic-depth-128x128.py')
SIZE = 64


@pytest.fixture
def mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


@pytest.fixture(scope='module')
def semantic_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('synthetic_seg'))
    generate_synthetic(root, num_train=4, num_val=1, size=SIZE, aux='depth', seed=0,
                       progress=False)
    classes = panoptic_to_semantic(root, 'train')
    assert panoptic_to_semantic(root, 'val') == classes
    return root, classes


def _tiny_cfg(data_root: str) -> Config:
    cfg = Config.fromfile(TINY)
    for loader in (cfg.train_dataloader, cfg.val_dataloader):
        loader.dataset.data_root = data_root
        for step in loader.dataset.pipeline:
            for key in ('scale', 'crop_size', 'size'):
                if key in step:
                    step[key] = (SIZE, SIZE)
    return cfg


@pytest.mark.parametrize('registry, name', [
    ('TRANSFORMS', 'LoadMultiModalImages'), ('TRANSFORMS', 'ModalityTransform'),
    ('MODELS', 'MultiModalDataPreprocessor'), ('MODELS', 'DualBackbone'), ('MODELS', 'TMAALoss')
])
def test_same_class_in_both_registries(registry, name):
    mmdet_reg = dict(TRANSFORMS=MMDET_TRANSFORMS, MODELS=MMDET_MODELS)[registry]
    mmseg_reg = dict(TRANSFORMS=MMSEG_TRANSFORMS, MODELS=MMSEG_MODELS)[registry]
    assert mmseg_reg.module_dict[name] is mmdet_reg.module_dict[name]
    with DefaultScope.overwrite_default_scope('mmseg'):
        built = mmseg_reg.get(name)
    assert built is mmdet_reg.get(name)


def test_panoptic_to_semantic_labels(semantic_data):
    root, classes = semantic_data
    assert classes == ('building', 'tree', 'car', 'road', 'grass', 'water')
    with open(osp.join(root, 'annotations', 'panoptic_train.json')) as f:
        coco = json.load(f)
    ann = coco['annotations'][0]
    label_of = {c['id']: i for i, c in enumerate(coco['categories'])}
    ids = rgb2id(mmcv.imread(osp.join(root, 'annotations', 'panoptic_train', ann['file_name']),
                             channel_order='rgb'))
    sem = mmcv.imread(osp.join(root, 'annotations', 'semantic_train', ann['file_name']),
                      flag='unchanged')
    assert sem.dtype == np.uint8 and sem.shape == ids.shape
    expected = np.full(ids.shape, 255, np.uint8)
    for seg in ann['segments_info']:
        expected[ids == seg['id']] = label_of[seg['category_id']]
    np.testing.assert_array_equal(sem, expected)
    assert len(np.unique(sem)) >= 2


def test_panoptic_to_semantic_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match='panoptic_train.json'):
        panoptic_to_semantic(str(tmp_path), 'train')
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations' / 'panoptic_train.json').write_text(json.dumps({'images': []}))
    with pytest.raises(ValueError, match='has no `categories` list'):
        panoptic_to_semantic(str(tmp_path), 'train')


def test_dataset_lists_modalities(semantic_data, mmseg_scope):
    root, classes = semantic_data
    cfg = _tiny_cfg(root)
    dataset = MMSEG_DATASETS.build(cfg.train_dataloader.dataset)
    assert isinstance(dataset, MultiModalSegDataset) and len(dataset) == 4
    info = dataset.get_data_info(0)
    assert list(info['modality_paths']) == ['optical', 'depth']
    assert info['modality_paths']['depth'].endswith('.tif')
    assert osp.isfile(info['modality_paths']['depth']) and osp.isfile(info['seg_map_path'])
    sample = dataset[0]
    assert sample['inputs'].shape == (4, SIZE, SIZE)
    assert sample['data_samples'].gt_sem_seg.data.shape == (1, SIZE, SIZE)
    assert dataset.metainfo['classes'] == classes


@pytest.mark.parametrize('change, words', [
    (dict(metainfo=None), 'pass the dataset classes'),
    (dict(modalities={}), '`modalities` must be a non-empty dict'),
    (dict(modality_suffixes=dict(sar='.tif')), "names ['sar'] which are not in `modalities`"),
])
def test_dataset_bad_configs(semantic_data, change, words, mmseg_scope):
    cfg = _tiny_cfg(semantic_data[0]).train_dataloader.dataset.to_dict()
    cfg.update(change)
    with pytest.raises(ValueError) as err:
        MMSEG_DATASETS.build(cfg)
    assert words in str(err.value)


def _batch(num: int = 2) -> dict:
    samples = []
    for _ in range(num):
        s = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 6, (1, SIZE, SIZE))))
        s.set_metainfo(dict(img_shape=(SIZE, SIZE), ori_shape=(SIZE, SIZE)))
        samples.append(s)
    scale = torch.tensor([255., 255., 255., 10.])[:, None, None]  # 8-bit optical, depth in m
    return dict(inputs=[torch.rand(4, SIZE, SIZE) * scale for _ in range(num)],
                data_samples=samples)


def test_semantic_base_matches_the_panoptic_synthetic_base():
    seg = Config.fromfile(osp.join(ROOT, 'configs', 'mmseg', '_base_', 'datasets',
                                   'synthetic_depth_semantic_128.py'))
    det = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets', 'synthetic_depth_128.py'))
    assert seg.seg_data_preprocessor.mean == det.modality_mean
    assert seg.seg_data_preprocessor.std == det.modality_std
    assert tuple(seg.seg_data_preprocessor.modality_channels) == tuple(det.modality_channels)
    assert seg.seg_data_root == det.data_root and seg.seg_crop_size == det.image_size


def test_encoder_decoder_with_concat_fusion_and_uperhead(mmseg_scope):
    cfg = Config.fromfile(TINY)
    model = MMSEG_MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'DualBackbone' and model.backbone.fusion == 'concat'
    assert type(model.decode_head).__name__ == 'UPerHead'
    data = model.data_preprocessor(_batch(), True)
    assert data['inputs'].shape == (2, 4, SIZE, SIZE)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert {'decode.loss_ce', 'aux.loss_ce', 'loss_tmaa'} <= set(losses)
    assert all(torch.isfinite(v).all() for k, v in losses.items() if 'loss' in k)
    assert 0 < losses['loss_tmaa'].item() < np.log(2) * cfg.model.tmaa_loss.loss_weight
    model.eval()
    with torch.no_grad():
        preds = model.test_step(_batch(1))
    assert preds[0].pred_sem_seg.data.shape == (1, SIZE, SIZE)
    assert preds[0].seg_logits.data.shape == (6, SIZE, SIZE)


def test_tmaa_needs_a_fused_dual_backbone(mmseg_scope):
    cfg = Config.fromfile(TINY)
    cfg.model.backbone.fusion = None
    with pytest.raises(ValueError, match='needs `backbone` to be a DualBackbone'):
        MMSEG_MODELS.build(cfg.model)


@pytest.mark.slow
def test_twenty_iterations_lower_the_loss(semantic_data, mmseg_scope):
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    cfg = _tiny_cfg(semantic_data[0])
    dataset = MMSEG_DATASETS.build(cfg.train_dataloader.dataset)
    model = MMSEG_MODELS.build(cfg.model)
    model.train()
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    totals, decode, counts = [], [], torch.zeros(256)
    for _ in range(20):
        batch = pseudo_collate([dataset[i] for i in range(len(dataset))])
        for sample in batch['data_samples']:
            counts += torch.bincount(sample.gt_sem_seg.data.flatten(), minlength=256)
        log_vars = model.train_step(copy.copy(batch), optim)
        totals.append(float(torch.as_tensor(log_vars['loss']).detach()))
        decode.append(float(log_vars['decode.loss_ce']))
    assert np.isfinite(totals).all()
    # at initialisation the 6-class head is close to uniform: cross-entropy ln 6 = 1.79
    assert decode[0] == pytest.approx(np.log(6), abs=0.15), decode
    # after 20 steps it beats the best prediction that ignores the image, the label
    # frequencies, whose cross-entropy is the entropy of the labels (1.15 nats here)
    freq = counts[:6][counts[:6] > 0] / counts[:6].sum()
    entropy = float(-(freq * freq.log()).sum())
    assert np.mean(decode[-4:]) < entropy < np.log(6), (decode, entropy)
    assert np.mean(totals[-4:]) < np.mean(totals[:4]), totals
