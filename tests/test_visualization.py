"""Prediction pictures: colours, panoptic shading/outlines and the panel layout."""
import matplotlib
import numpy as np
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData

from pmtseg_mm.visualization import (colorize_labels, colorize_panoptic,
                                     draw_multimodal_prediction, render_modality)

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def test_colorize_labels_and_void():
    out = colorize_labels(np.array([[0, 2], [255, 1]]), PALETTE)
    assert out[0, 0].tolist() == [255, 0, 0] and out[0, 1].tolist() == [0, 0, 255]
    assert out[1, 0].tolist() == [0, 0, 0] and out[1, 1].tolist() == [0, 255, 0]


def test_colorize_panoptic_shades_instances_and_outlines_segments():
    pan = np.full((6, 6), 2, np.int64)  # stuff class 2
    pan[:, :3] = 0 + 1 * INSTANCE_OFFSET  # instance 1 of class 0
    pan[5, 5] = 3  # void (num_classes = 3)
    out = colorize_panoptic(pan, 3, PALETTE)
    assert out[0, 5].tolist() == [0, 0, 255]  # stuff keeps its palette colour
    assert out[0, 0, 0] < 255 and out[0, 0, 1:].tolist() == [0, 0]  # shaded red
    assert out[0, 3].tolist() == [255, 255, 255]  # outline between segments
    assert out[4, 4].tolist() == [0, 0, 255] and out[5, 5].tolist() == [255, 255, 255]


def test_render_modality_colour_and_single_band():
    bgr = np.zeros((4, 4, 3), np.uint8)
    bgr[..., 2] = 200
    assert render_modality(bgr, bgr=True)[0, 0].tolist() == [200, 0, 0]
    depth = np.linspace(0, 30, 16, dtype=np.float32).reshape(4, 4, 1)
    rgb = render_modality(depth, bgr=False)
    assert rgb.shape == (4, 4, 3)
    # 2nd/98th percentiles of 0, 2, ..., 30: 0.6 and 29.4; stretched, clipped, truncated to
    # uint8, then viridis (matplotlib's table; OpenCV's differs by at most 1 per channel)
    values = np.linspace(0, 30, 16)
    index = np.clip((values - 0.6) * 255 / (29.4 - 0.6), 0, 255).astype(np.uint8)
    assert index[[0, 1, 15]].tolist() == [0, 12, 255]  # (2 - 0.6) * 255 / 28.8 = 12.4
    expected = np.asarray(matplotlib.colormaps['viridis'](index)[:, :3]) * 255
    assert np.abs(rgb.reshape(16, 3).astype(float) - expected).max() <= 1.5
    assert rgb[0, 0].tolist() == [68, 1, 84] and rgb[3, 3].tolist() == [253, 231, 37]


def test_panel_has_one_column_per_available_view():
    h, w = 16, 20
    sample = DetDataSample(metainfo=dict(img_shape=(h, w)))
    sample.pred_sem_seg = PixelData(sem_seg=torch.zeros(1, h, w, dtype=torch.long))
    sample.pred_panoptic_seg = PixelData(sem_seg=torch.full((1, h, w), 2))
    masks = torch.zeros(1, h, w, dtype=torch.bool)
    masks[0, :4, :4] = True
    sample.pred_instances = InstanceData(masks=masks, labels=torch.tensor([1]),
                                         scores=torch.tensor([0.9]))
    arrays = dict(optical=np.zeros((h, w, 3), np.uint8), depth=np.ones((h, w, 1), np.float32))
    meta = dict(classes=('a', 'b', 'c'), palette=PALETTE)
    picture = draw_multimodal_prediction(arrays, sample, meta)
    # optical | depth | semantic | instance | panoptic, 4 px gaps, an 18 px title bar
    assert picture.shape == (h + 18, 5 * w + 4 * 4, 3)
    instance_panel = picture[18:, 3 * (w + 4):3 * (w + 4) + w]
    assert instance_panel[1, 1, 1] > 100  # class 1 (green) blended into the instance mask
