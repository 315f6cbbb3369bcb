"""LoadMultiModalImages, ModalityTransform and pixel alignment through stock geometric transforms."""
import json
import logging
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile
from mmcv.transforms import Compose
from mmdet.registry import TRANSFORMS
from mmengine.logging import MMLogger
from panopticapi.utils import id2rgb

from pmtseg_mm.datasets import MultiModalCocoPanopticDataset
from pmtseg_mm.datasets.transforms import LoadMultiModalImages, ModalityTransform, read_raster
from pmtseg_mm.datasets.transforms.loading import InvalidDataError, read_georef


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
    for name in ('d.tif', 'o.png'):  # truncated files: the first half of a valid one
        data = (tmp_path / name).read_bytes()
        (tmp_path / f'trunc_{name}').write_bytes(data[:len(data) // 2])
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
    ('trunc_d.tif', {}, ValueError, ["modality 'depth'", 'cannot read', 'trunc_d.tif']),
    ('trunc_o.png', {}, ValueError, ["modality 'depth'", 'cannot read', 'trunc_o.png']),
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


# --- reliability: non-finite pixels, dtype / range, georeferencing (docs/reliability.md) ---


def _geotiff(path, array, origin=(500000.0, 4800000.0), pixel=(0.5, 0.5), epsg=32631,
             transformation=False, point=False):
    """A GeoTIFF with pixel scale + tie point (or a 4x4 transformation) and an EPSG code."""
    keys = [1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 2 if point else 1, 3072, 0, 1, epsg]
    if transformation:
        matrix = [pixel[0], 0, 0, origin[0], 0, -pixel[1], 0, origin[1], 0, 0, 0, 0, 0, 0, 0, 1]
        geo = [(34264, 'd', 16, matrix, True)]
    else:
        geo = [(33550, 'd', 3, (pixel[0], pixel[1], 0.0), True),
               (33922, 'd', 6, (0.0, 0.0, 0.0, origin[0], origin[1], 0.0), True)]
    tifffile.imwrite(path, array, extratags=geo + [(34735, 'H', len(keys), keys, True)])


@pytest.fixture
def bad(tmp_path):
    cv2.imwrite(str(tmp_path / 'o.png'), np.full((8, 8, 3), 100, np.uint8))
    inf = np.zeros((8, 8), np.float32)
    inf[1, 2], inf[3, 4] = np.inf, -np.inf
    tifffile.imwrite(tmp_path / 'inf.tif', inf)
    nan_inf = inf.copy()
    nan_inf[0, 0] = np.nan
    tifffile.imwrite(tmp_path / 'nan_inf.tif', nan_inf)
    tifffile.imwrite(tmp_path / 'o16.tif', np.full((8, 8, 3), 3000, np.uint16))
    tifffile.imwrite(tmp_path / 'd.tif', np.linspace(0, 30, 64, dtype=np.float32).reshape(8, 8))
    return tmp_path


@pytest.mark.parametrize('optical, depth, depth_opts, opt_opts, words', [
    ('o.png', 'inf.tif', {}, {}, ['+Inf/-Inf', 'inf.tif', "modality 'depth'",
                                  'modalities.depth.inf_value']),
    ('o.png', 'nan_inf.tif', dict(nan_value=0), {}, ['Inf', 'nan_inf.tif', 'inf_value']),
    ('o16.tif', 'd.tif', {}, dict(dtype='uint8'), ["modality 'optical'", 'o16.tif', 'uint16',
                                                     'modalities.optical.dtype', 'uint8']),
    ('o16.tif', 'd.tif', {}, dict(value_range=(0, 255)), ['o16.tif', '[3000, 3000]',
                                                          'modalities.optical.value_range']),
    ('o.png', 'd.tif', dict(value_range=[0, 20]), {}, ["modality 'depth'", 'd.tif', '[0, 30]',
                                                       'modalities.depth.value_range']),
])
def test_non_finite_dtype_and_range_errors_name_file_and_key(bad, optical, depth, depth_opts,
                                                             opt_opts, words):
    with pytest.raises(ValueError) as err:
        _load(dict(optical=str(bad / optical), depth=str(bad / depth)),
              modalities=dict(optical=opt_opts, depth=depth_opts))
    assert isinstance(err.value, InvalidDataError)
    assert str(bad / (optical if opt_opts else depth)) in err.value.files
    for word in words:
        assert word in str(err.value)


def test_inf_value_maps_both_signs_and_pairs(bad):
    paths = dict(optical=str(bad / 'o.png'), depth=str(bad / 'nan_inf.tif'))
    out = _load(paths, modalities=dict(optical={}, depth=dict(nan_value=-1, inf_value=99.)))
    depth = out['img'][..., 3]
    assert depth[0, 0] == -1 and depth[1, 2] == 99 and depth[3, 4] == 99
    assert np.isfinite(out['img']).all()
    out = _load(paths, modalities=dict(optical={}, depth=dict(nan_value=0, inf_value=(-5, 50))))
    assert out['img'][1, 2, 3] == 50 and out['img'][3, 4, 3] == -5 and out['img'][0, 0, 3] == 0


def test_dtype_and_range_pass_and_warn_once(bad):
    ok = _load(dict(optical=str(bad / 'o.png'), depth=str(bad / 'd.tif')),
               modalities=dict(optical=dict(dtype='uint8', value_range=(0, 255)),
                               depth=dict(dtype=['float32', 'float64'], value_range=(0, 30))))
    assert ok['img'].shape == (8, 8, 4)
    loader = LoadMultiModalImages(modalities=dict(
        optical=dict(dtype='uint8', on_mismatch='warn'), depth={}))
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        for _ in range(3):
            out = loader(dict(modality_paths=dict(optical=str(bad / 'o16.tif'),
                                                  depth=str(bad / 'd.tif'))))
    finally:
        logger.removeHandler(handler)
    assert out['img'][0, 0, 0] == 3000  # loaded anyway
    warnings = [r.getMessage() for r in records if 'uint16' in r.getMessage()]
    assert len(warnings) == 1 and 'o16.tif' in warnings[0] and 'warned once' in warnings[0]


@pytest.mark.parametrize('opts, words', [
    (dict(inf_value='big'), 'modalities.depth.inf_value'),
    (dict(inf_value=(1, 2, 3)), 'modalities.depth.inf_value'),
    (dict(nan_value=float('nan')), 'modalities.depth.nan_value'),
    (dict(dtype='uint7'), 'modalities.depth.dtype'),
    (dict(value_range=(5, 1)), 'modalities.depth.value_range'),
    (dict(value_range=5), 'modalities.depth.value_range'),
    (dict(on_mismatch='ignore'), 'modalities.depth.on_mismatch'),
])
def test_bad_check_options(opts, words):
    with pytest.raises(ValueError) as err:
        LoadMultiModalImages(modalities=dict(optical={}, depth=opts))
    assert words in str(err.value)


def test_geotiff_georeferencing_must_agree(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    dep = np.zeros((8, 8), np.float32)
    _geotiff(tmp_path / 'o.tif', img)
    _geotiff(tmp_path / 'same.tif', dep, transformation=True)  # other encoding, same grid
    _geotiff(tmp_path / 'point.tif', dep, origin=(500000.25, 4799999.75), point=True)
    _geotiff(tmp_path / 'crs.tif', dep, epsg=32632)
    _geotiff(tmp_path / 'shift.tif', dep, origin=(500010.0, 4800000.0))
    _geotiff(tmp_path / 'res.tif', dep, pixel=(1.0, 1.0))
    tifffile.imwrite(tmp_path / 'plain.tif', dep)
    loader = LoadMultiModalImages(modalities=['optical', 'depth'])
    for ok in ('same.tif', 'point.tif', 'plain.tif'):  # plain TIFF: nothing to compare
        out = loader(dict(modality_paths=dict(optical=str(tmp_path / 'o.tif'),
                                              depth=str(tmp_path / ok))))
        assert out['img'].shape == (8, 8, 4)
    for name, word in (('crs.tif', '3072=32632'), ('shift.tif', '500010'), ('res.tif', ', 1,')):
        with pytest.raises(InvalidDataError) as err:
            loader(dict(modality_paths=dict(optical=str(tmp_path / 'o.tif'),
                                            depth=str(tmp_path / name))))
        text = str(err.value)
        assert 'disagree in georeferencing' in text and word in text
        assert str(tmp_path / 'o.tif') in text and str(tmp_path / name) in text
        assert err.value.files == (str(tmp_path / 'o.tif'), str(tmp_path / name))
    off = LoadMultiModalImages(modalities=['optical', 'depth'], check_georef=False)
    assert off(dict(modality_paths=dict(optical=str(tmp_path / 'o.tif'),
                                        depth=str(tmp_path / 'crs.tif'))))['img'].shape[2] == 4
    tif = tifffile.TiffFile(tmp_path / 'o.tif')
    georef = read_georef(tif)
    tif.close()
    assert georef.transform == (500000.0, 0.5, 0.0, 4800000.0, 0.0, -0.5)
    assert dict(georef.crs) == {1024: 1, 3072: 32631} and georef.size == (8, 8)
