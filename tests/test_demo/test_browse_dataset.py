"""tools/analysis_tools/browse_dataset.py: all modalities and the GT after the pipeline."""
import glob
import importlib.util
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from pmtseg_mm.datasets.synthetic import generate_synthetic

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'pmtseg',
                  'pmtseg_r18-tiny-moddrop_1xb4-1000it_synthetic-depth-128x128.py')


def load_tool():
    path = osp.join(ROOT, 'tools', 'analysis_tools', 'browse_dataset.py')
    spec = importlib.util.spec_from_file_location('browse_dataset', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browse_writes_one_picture_per_sample(tmp_path, capsys):
    data = tmp_path / 'data'
    generate_synthetic(str(data), num_train=3, num_val=1, size=64, progress=False)
    tool = load_tool()
    out = tmp_path / 'browse'
    written = tool.main([CONFIG, '--output-dir', str(out), '--num', '5', '--cfg-options',
                         f'train_dataloader.dataset.data_root={data}/'])
    assert len(written) == 3 == len(glob.glob(str(out / '*.png')))
    picture = cv2.imread(written[0])
    # optical | depth | GT semantic | GT instances | GT panoptic, 4 px gaps, 18 px titles
    side = (picture.shape[1] - 4 * 4) / 5
    assert side == int(side) and picture.shape[0] == side + 18
    with pytest.raises(SystemExit) as exit_info:
        tool.parse_args([CONFIG, '--output-dir', str(out), '--split', 'foo'])
    assert exit_info.value.code == 2  # argparse's usage error, naming the option and the value
    assert re.search(r"--split: invalid choice: 'foo'", capsys.readouterr().err)


def test_draw_sample_marks_dropped_modality_and_builds_panoptic():
    tool = load_tool()
    sample = DetDataSample(metainfo=dict(modalities=('optical', 'depth'),
                                         modality_channels=(3, 1),
                                         missing_modalities=('depth', )))
    sem = np.full((16, 16), 4, np.int64)
    sem[:4] = 255
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem)[None])
    masks = np.zeros((1, 16, 16), bool)
    masks[0, 8:12, 8:12] = True
    sample.gt_instances = InstanceData(masks=torch.from_numpy(masks),
                                       labels=torch.tensor([1]))
    item = dict(inputs=torch.rand(4, 16, 16) * 255, data_samples=sample)
    meta = dict(classes=('a', 'b', 'c', 'd', 'e', 'f'), palette=[(i * 40, 0, 0) for i in range(6)])
    picture = tool.draw_sample(item, meta)
    assert picture.shape == (16 + 18, 5 * 16 + 4 * 4, 3)
    pan = tool.gt_panoptic(sem, masks, np.array([1]), 6)
    assert pan[0, 0] == 6 and pan[5, 5] == 4 and pan[9, 9] == 1 + INSTANCE_OFFSET
    item['inputs'] = torch.rand(3, 16, 16)
    with pytest.raises(ValueError, match='has 3 channels but `modality_channels`'):
        tool.draw_sample(item, meta)
