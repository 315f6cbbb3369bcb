"""MultiModalDataPreprocessor: per-modality normalisation, BGR flip of optical only, padding."""
import logging

import numpy as np
import pytest
import torch
from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.structures import DetDataSample
from mmdet.structures.mask import BitmapMasks
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData, PixelData

from pmtseg_mm.models.data_preprocessors import MultiModalDataPreprocessor


def _sample(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (4, h, w), generator=g).to(torch.uint8)
    ds = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w)))
    masks = (torch.rand(2, h, w, generator=g) > 0.5).numpy().astype(np.uint8)
    ds.gt_instances = InstanceData(labels=torch.tensor([0, 1]), masks=BitmapMasks(masks, h, w),
                                   bboxes=torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.]]))
    ds.gt_sem_seg = PixelData(sem_seg=torch.randint(0, 5, (1, h, w), generator=g))
    return img, ds


def test_normalisation_flip_and_padding_match_det_preprocessor():
    mean = [[10., 20., 30.], [2.5]]
    std = [[2., 4., 5.], [0.5]]
    pre = MultiModalDataPreprocessor(modality_channels=(3, 1), mean=mean, std=std, bgr_to_rgb=True,
                                     pad_size_divisor=32, pad_mask=True, pad_seg=True,
                                     seg_pad_value=255, max_median_std=None)  # 0-1 inputs
    ref = DetDataPreprocessor(mean=mean[0], std=std[0], bgr_to_rgb=True, pad_size_divisor=32,
                              pad_mask=True, pad_seg=True, seg_pad_value=255)
    samples = [_sample(20, 30, 0), _sample(33, 17, 1)]
    out = pre(dict(inputs=[s[0] for s in samples], data_samples=[s[1] for s in samples]),
              training=True)
    x = out['inputs']
    assert x.shape == (2, 4, 64, 32)
    img0 = samples[0][0].float()
    # optical: BGR -> RGB, then (x - mean) / std with the RGB-order statistics
    expected_r = (img0[2] - 10.) / 2.
    torch.testing.assert_close(x[0, 0, :20, :30], expected_r)
    torch.testing.assert_close(x[0, 3, :20, :30], (img0[3] - 2.5) / 0.5)
    assert (x[0, :, 20:, :] == 0).all() and (x[0, :, :, 30:] == 0).all()
    # optical channels, masks and semantic maps are padded exactly like DetDataPreprocessor
    ref_samples = [_sample(20, 30, 0), _sample(33, 17, 1)]
    ref_out = ref(dict(inputs=[s[0][:3] for s in ref_samples],
                       data_samples=[s[1] for s in ref_samples]), training=True)
    torch.testing.assert_close(x[:, :3], ref_out['inputs'])
    for got, want in zip(out['data_samples'], ref_out['data_samples']):
        assert got.batch_input_shape == want.batch_input_shape == (64, 32)
        assert got.pad_shape == want.pad_shape
        torch.testing.assert_close(got.gt_sem_seg.sem_seg, want.gt_sem_seg.sem_seg)
        assert got.gt_sem_seg.sem_seg.shape[-2:] == (64, 32)
        assert (got.gt_instances.masks.masks == want.gt_instances.masks.masks).all()


def test_scalar_means_broadcast_and_flip_per_modality():
    pre = MultiModalDataPreprocessor(modality_channels=(1, 3), mean=[[1.], 2.], std=[[1.], [2.]],
                                     bgr_to_rgb=(False, True))
    assert pre.mean.flatten().tolist() == [1., 2., 2., 2.]
    img = torch.arange(4.).view(4, 1, 1).repeat(1, 2, 2)
    x = pre(dict(inputs=[img]))['inputs']
    assert x[0, :, 0, 0].tolist() == [-1., 0.5, 0., -0.5]  # aux untouched, second group flipped


@pytest.mark.parametrize('kwargs, words', [
    (dict(modality_channels=(3, 1), mean=[[0., 0., 0.]], std=[[1., 1., 1.]]), '`mean` has 1 groups'),
    (dict(modality_channels=(3, 1), mean=[[0., 0.], [0.]], std=[[1.] * 3, [1.]]), '`mean[0]` has 2'),
    (dict(modality_channels=(3, 1), mean=[[0.] * 3, [0.]], std=[[1.] * 3, [0.]]), '`std` must be > 0'),
    (dict(modality_channels=(1, 3), bgr_to_rgb=True), 'has 1 channels'),
    (dict(modality_channels=(3, 1), bgr_to_rgb=(True, )), '`bgr_to_rgb` has 1 entries'),
    (dict(modality_channels=(3, 0)), 'positive channel count'),
])
def test_bad_configs(kwargs, words):
    with pytest.raises(ValueError) as err:
        MultiModalDataPreprocessor(**kwargs)
    assert words in str(err.value)


def test_channel_count_mismatch_names_the_key():
    pre = MultiModalDataPreprocessor(modality_channels=(3, 1), mean=[[0.] * 3, [0.]],
                                     std=[[1.] * 3, [1.]])
    with pytest.raises(ValueError, match=r'3 channels but `modality_channels`=\(3, 1\) sums to 4'):
        pre(dict(inputs=[torch.zeros(3, 8, 8)]))


def _meta_sample(h, w, name):
    return DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w), img_path=f'{name}.png',
                                       modalities=('optical', 'depth'),
                                       modality_paths=dict(optical=f'{name}.png',
                                                           depth=f'{name}.tif')))


@pytest.mark.parametrize('training', [True, False])
@pytest.mark.parametrize('value', [float('nan'), float('inf'), -float('inf')])
def test_non_finite_batch_names_sample_and_modality(training, value):
    pre = MultiModalDataPreprocessor(modality_channels=(3, 1), mean=[[0.] * 3, [0.]],
                                     std=[[1.] * 3, [1.]])
    good, broken = torch.zeros(4, 8, 8), torch.zeros(4, 8, 8)
    broken[3, 2, 2] = value
    with pytest.raises(ValueError) as err:
        pre(dict(inputs=[good, broken], data_samples=[_meta_sample(8, 8, 'a'),
                                                       _meta_sample(8, 8, 'b')]), training)
    text = str(err.value)
    assert "non-finite" in text and "modality 'depth' of b.tif" in text and 'a.png' not in text
    pre.check_finite = False  # the switch: the batch passes unchanged
    out = pre(dict(inputs=[good, broken]), training)['inputs']
    assert not torch.isfinite(out).all()


def test_out_of_range_inputs_warn_once():
    pre = MultiModalDataPreprocessor(modality_channels=(3, 1), mean=[[123.675, 116.28, 103.53], [1.]],
                                     std=[[58.395, 57.12, 57.375], [3.]], bgr_to_rgb=True,
                                     max_median_std=None)  # the warning alone
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        img16 = torch.full((4, 8, 8), 200000.)  # 16-bit-like optical under 8-bit statistics
        img16[3] = 5.
        for _ in range(3):
            pre(dict(inputs=[torch.zeros(4, 8, 8), img16],
                     data_samples=[_meta_sample(8, 8, 'a'), _meta_sample(8, 8, 'b')]))
        pre(dict(inputs=[torch.full((4, 8, 8), 100.)]))  # in range: nothing new
    finally:
        logger.removeHandler(handler)
    texts = [r.getMessage() for r in records if 'warn_abs_above' in r.getMessage()]
    assert len(texts) == 1
    peak = max((200000. - m) / s for m, s in ((123.675, 58.395), (116.28, 57.12), (103.53, 57.375)))
    assert "modality 'optical' of b.png" in texts[0] and f'{peak:.4g}' in texts[0]
    with pytest.raises(ValueError, match='`warn_abs_above` must be > 0'):
        MultiModalDataPreprocessor(modality_channels=(3, 1), warn_abs_above=0)
