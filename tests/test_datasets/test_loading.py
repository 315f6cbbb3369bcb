"""LoadMultiModalImages, ModalityTransform and pixel alignment through stock geometric transforms."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile
from mmcv.transforms import Compose
from mmdet.registry import TRANSFORMS
from panopticapi.utils import id2rgb

from pmtseg_mm.datasets import MultiModalCocoPanopticDataset
from pmtseg_mm.datasets.transforms import LoadMultiModalImages, ModalityTransform, read_raster


def _load(paths, **kwargs):
    return LoadMultiModalImages(**kwargs)(dict(modality_paths=paths))


def test_png_is_bgr_and_tiff_keeps_dtype_and_bands(tmp_path):
    rgb = np.zeros((5, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red channel on disk
    cv2.imwrite(str(tmp_path / 'o.png'), rgb[..., ::-1])  # cv2 writes BGR arrays
    d16 = (np.arange(30, dtype=np.uint16).reshape(5, 6) * 1000)
    tifffile.imwrite(tmp_path / 'd16.tif', d16)
    f32 = np.linspace(-3.5, 7.25, 30, dtype=np.float32).reshape(5, 6)
    tifffile.imwrite(tmp_path / 'f32.tif', f32)
    planar = np.stack([np.full((5, 6), 10 * (b + 1), np.uint16) for b in range(8)])  # (8, H, W)
    tifffile.imwrite(tmp_path / 'ms.tif', planar, planarconfig='separate')

    assert read_raster(str(tmp_path / 'd16.tif')).dtype == np.uint16
    assert read_raster(str(tmp_path / 'ms.tif')).shape == (5, 6, 8)
    out = _load(
        dict(optical=str(tmp_path / 'o.png'), d16=str(tmp_path / 'd16.tif'),
             f32=str(tmp_path / 'f32.tif'), ms=str(tmp_path / 'ms.tif')),
        modalities=dict(optical=dict(channels=3), d16=dict(), f32=dict(),
                        ms=dict(bands=[4, 2, 1], channels=3)))
    img = out['img']
    assert img.dtype == np.float32 and img.shape == (5, 6, 3 + 1 + 1 + 3)
    np.testing.assert_array_equal(img[0, 0, :3], [0, 0, 200])  # BGR: red last
    assert img[4, 5, 3] == 29000.0  # 16-bit value survives
    np.testing.assert_allclose(img[..., 4], f32)
    np.testing.assert_array_equal(img[0, 0, 5:], [50, 30, 20])  # bands 5/3/2 (1-indexed)
    assert out['modalities'] == ('optical', 'd16', 'f32', 'ms')
    assert out['modality_channels'] == (3, 1, 1, 3)
    assert out['img_shape'] == (5, 6) and out['img_path'] == str(tmp_path / 'o.png')


@pytest.fixture
def pair(tmp_path):
    cv2.imwrite(str(tmp_path / 'o.png'), np.zeros((8, 8, 3), np.uint8))
    tifffile.imwrite(tmp_path / 'd.tif', np.zeros((8, 8), np.float32))
    tifffile.imwrite(tmp_path / 'small.tif', np.zeros((8, 7), np.float32))
    tifffile.imwrite(tmp_path / 'nan.tif', np.full((8, 8), np.nan, np.float32))
    (tmp_path / 'broken.png').write_bytes(b'not an image at all')
    (tmp_path / 'a_folder').mkdir()
    return tmp_path


@pytest.mark.parametrize('aux, opts, exc, words', [
    ('small.tif', {}, ValueError, ['differ in size', 'small.tif', '8x8', '8x7']),
    ('missing.tif', {}, FileNotFoundError, ["modality 'depth'", 'missing.tif']),
    ('d.tif', dict(bands=[1]), IndexError, ['modalities.depth.bands', 'd.tif', '1 band']),
    ('d.tif', dict(channels=2), ValueError, ['modalities.depth.channels', 'expects 2', 'gives 1']),
    ('broken.png', {}, ValueError, ["modality 'depth'", 'cannot read', 'broken.png']),
    ('nan.tif', {}, ValueError, ['NaN', 'nan.tif', 'modalities.depth.nan_value']),
    ('a_folder', {}, ValueError, ["modality 'depth'", 'cannot read', 'a_folder']),
])
def test_bad_inputs_give_one_clear_error(pair, aux, opts, exc, words):
    with pytest.raises(exc) as err:
        _load(dict(optical=str(pair / 'o.png'), depth=str(pair / aux)),
              modalities=dict(optical=dict(), depth=opts))
    for word in words:
        assert word in str(err.value)


def test_nan_value_and_option_errors(pair):
    out = _load(dict(optical=str(pair / 'o.png'), depth=str(pair / 'nan.tif')),
                modalities=dict(optical={}, depth=dict(nan_value=-1.0)))
    assert (out['img'][..., 3] == -1).all()
    with pytest.raises(ValueError, match='modalities.depth.*unknown options'):
        LoadMultiModalImages(modalities=dict(optical={}, depth=dict(band=[0])))
    with pytest.raises(KeyError, match="no path for modalities \\['depth'\\]"):
        LoadMultiModalImages(modalities=['optical', 'depth'])(
            dict(modality_paths=dict(optical=str(pair / 'o.png'))))


def test_modality_transform_touches_only_its_slice():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (16, 16, 4)).astype(np.float32)
    results = dict(img=img.copy(), modalities=('optical', 'depth'), modality_channels=(3, 1))
    out = ModalityTransform('optical', [dict(type='PhotoMetricDistortion',
                                             brightness_delta=200)])(results)
    assert out['img'].shape == (16, 16, 4)
    np.testing.assert_array_equal(out['img'][..., 3], img[..., 3])
    assert np.abs(out['img'][..., :3] - img[..., :3]).max() > 0
    with pytest.raises(ValueError, match="modality='optical'.*changed the slice"):
        ModalityTransform('optical', [dict(type='Resize', scale=(8, 8))])(
            dict(img=img.copy(), modalities=('optical', 'depth'), modality_channels=(3, 1)))
    with pytest.raises(KeyError, match="'sar' is not loaded"):
        ModalityTransform('sar', [dict(type='PhotoMetricDistortion')])(
            dict(img=img.copy(), modalities=('optical', 'depth'), modality_channels=(3, 1)))


def _write_sample(root, size=96):
    """One sample whose depth = 0.5 * optical_green + 10 and whose labels follow optical blocks."""
    yy, xx = np.mgrid[:size, :size]
    labels = ((yy // 32) * 3 + xx // 32) % 4  # 3x3 blocks, classes 0..3
    optical = np.zeros((size, size, 3), np.uint8)
    optical[..., 0] = 40 + 50 * labels  # blue channel encodes the class (block interiors)
    optical[..., 1] = (xx * 2 + yy) % 256  # smooth ramp for the aux relation
    optical[..., 2] = 255 - optical[..., 0]
    depth = 0.5 * optical[..., 1].astype(np.float32) + 10
    for name, sub in (('optical', 'o'), ('depth', 'd'), ('annotations/panoptic_train', 'p')):
        (root / name).mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / 'optical/s0.png'), optical)
    tifffile.imwrite(root / 'depth/s0.tif', depth)
    seg_ids = labels + 1  # one segment per class; ids 1..4
    cv2.imwrite(str(root / 'annotations/panoptic_train/s0.png'), id2rgb(seg_ids)[..., ::-1])
    cats = [dict(id=1, name='building', isthing=1), dict(id=2, name='car', isthing=1),
            dict(id=3, name='road', isthing=0), dict(id=4, name='grass', isthing=0)]
    segs = []
    for sid in range(1, 5):
        ys, xs = np.nonzero(seg_ids == sid)
        segs.append(dict(id=sid, category_id=sid, iscrowd=0, area=int(len(ys)),
                         bbox=[int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1,
                               int(np.ptp(ys)) + 1]))
    ann = dict(images=[dict(id=0, file_name='s0.png', width=size, height=size)],
               annotations=[dict(image_id=0, file_name='s0.png', segments_info=segs)],
               categories=cats)
    (root / 'annotations/panoptic_train.json').write_text(json.dumps(ann))
    return dict(classes=('building', 'car', 'road', 'grass'), thing_classes=('building', 'car'),
                stuff_classes=('road', 'grass'))


def test_pixel_alignment_survives_lsj_crop_flip_pad(tmp_path):
    metainfo = _write_sample(tmp_path)
    pipeline = [
        dict(type='LoadMultiModalImages', modalities=dict(optical={}, depth={})),
        dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
        dict(type='RandomResize', scale=(96, 96), ratio_range=(0.1, 2.0), resize_type='Resize',
             keep_ratio=True),
        dict(type='RandomCrop', crop_size=(64, 64), crop_type='absolute', recompute_bbox=True,
             allow_negative_crop=True),
        dict(type='RandomFlip', prob=0.5, direction=['horizontal', 'vertical']),
        dict(type='Pad', size=(64, 64), pad_val=dict(img=0, seg=255)),
    ]
    dataset = MultiModalCocoPanopticDataset(
        data_root=str(tmp_path), ann_file='annotations/panoptic_train.json', metainfo=metainfo,
        data_prefix=dict(img='optical/', seg='annotations/panoptic_train/'),
        modalities=dict(optical='optical/', depth='depth/'), modality_suffixes=dict(depth='.tif'),
        pipeline=[])
    info = dataset[0]
    assert info['modality_paths'] == dict(optical=osp.join(str(tmp_path), 'optical/s0.png'),
                                          depth=osp.join(str(tmp_path), 'depth/s0.tif'))
    transform = Compose([TRANSFORMS.build(t) for t in pipeline])
    np.random.seed(0)
    scales = []
    for _ in range(12):
        out = transform(dataset.get_data_info(0))
        img, seg = out['img'], out['gt_seg_map']
        assert img.shape == (64, 64, 4) and seg.shape == (64, 64)
        scales.append(out['scale_factor'][0])
        valid = seg != 255
        # aux = f(optical) holds after one shared random draw (interpolation is linear)
        np.testing.assert_allclose(img[..., 3][valid], 0.5 * img[..., 1][valid] + 10, atol=1e-3)
        # labels stay on their optical block: blue channel equals 40 + 50 * class inside blocks
        for label in np.unique(seg[valid]):
            blue = img[..., 0][seg == label]
            assert np.mean(np.abs(blue - (40 + 50 * label)) < 1.0) > 0.75
        masks = out['gt_masks'].to_ndarray()
        for mask, label in zip(masks, out['gt_bboxes_labels']):
            assert (seg[mask.astype(bool)] == label).all()
    assert min(scales) < 0.5 and max(scales) > 1.2  # the jitter range was exercised


def test_dataset_argument_errors(tmp_path):
    metainfo = _write_sample(tmp_path)
    common = dict(data_root=str(tmp_path), ann_file='annotations/panoptic_train.json',
                  metainfo=metainfo, data_prefix=dict(img='optical/', seg='annotations/'))
    with pytest.raises(ValueError, match='`modalities` must be a non-empty dict'):
        MultiModalCocoPanopticDataset(modalities=[], **common)
    with pytest.raises(ValueError, match="`modality_suffixes` names \\['sar'\\]"):
        MultiModalCocoPanopticDataset(modalities=dict(optical='optical/'),
                                      modality_suffixes=dict(sar='.tif'), **common)
