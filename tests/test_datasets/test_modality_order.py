"""The channel order survives a config dump: mmengine sorts dict keys when it writes a config
(the copy in work_dir), so the loader takes its order from the `order` list; a stack of another
order is refused by the preprocessor instead of being misnormalised."""
import os.path as osp

import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.config import Config

from pmtseg_mm.datasets.transforms import LoadMultiModalImages
from pmtseg_mm.models.data_preprocessors import MultiModalDataPreprocessor

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_dumped_config_keeps_the_channel_order(tmp_path):
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'pmtseg', 'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'))
    cfg.dump(str(tmp_path / 'dumped.py'))
    dumped = Config.fromfile(str(tmp_path / 'dumped.py'))
    for pipeline in (dumped.train_dataloader.dataset.pipeline,
                     dumped.test_dataloader.dataset.pipeline):
        options = pipeline[0]
        assert list(options['modalities']) == ['depth', 'optical']  # sorted by the dump
        loader = LoadMultiModalImages(**{k: v for k, v in options.items() if k != 'type'})
        assert list(loader.modalities) == ['optical', 'depth']  # the order the statistics are for


def test_order_must_name_every_modality_once():
    with pytest.raises(ValueError, match=r"`order` \['optical'\] must name each of the "
                       r"`modalities` \['optical', 'depth'\] once"):
        LoadMultiModalImages(modalities=dict(optical={}, depth={}), order=['optical'])


def test_preprocessor_refuses_a_stack_of_another_order():
    pre = MultiModalDataPreprocessor(modality_channels=(3, 1), mean=[[0.] * 3, [0.]],
                                     std=[[1.] * 3, [1.]])
    sample = DetDataSample(metainfo=dict(img_path='a.png', modalities=('depth', 'optical'),
                                         modality_channels=(1, 3), img_shape=(8, 8)))
    with pytest.raises(ValueError, match=r"stacks the modalities \('depth', 'optical'\) with "
                       r'channels \(1, 3\), but `modality_channels`=\(3, 1\).*dict keys sorted'):
        pre(dict(inputs=[torch.zeros(4, 8, 8)], data_samples=[sample]))
