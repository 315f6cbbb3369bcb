"""Nodata in training data: the loader checks valid pixels only, fills nodata with 0 and hands
its mask to VoidNodata, which voids the targets there (checked by hand and through the shipped
synthetic test pipeline)."""
import os.path as osp

import numpy as np
import pytest
import tifffile
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks
from mmengine.config import Config
from mmengine.registry import init_default_scope

from pmtseg_mm.datasets.synthetic import generate_synthetic
from pmtseg_mm.datasets.transforms import LoadMultiModalImages, VoidNodata

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_loader_checks_valid_pixels_and_fills_nodata(tmp_path):
    optical = np.full((6, 8, 3), 200, np.uint8)
    depth = np.full((6, 8), 3.0, np.float32)
    depth[:2, :3] = -9999
    tifffile.imwrite(tmp_path / 'o.tif', optical)
    tifffile.imwrite(tmp_path / 'd.tif', depth)
    paths = dict(optical=str(tmp_path / 'o.tif'), depth=str(tmp_path / 'd.tif'))
    strict = LoadMultiModalImages(modalities=dict(optical={}, depth=dict(value_range=(0, 100))))
    with pytest.raises(ValueError, match=r'has values in \[-9999, 3\] outside'):
        strict(dict(modality_paths=paths))
    loader = LoadMultiModalImages(modalities=dict(
        optical={}, depth=dict(value_range=(0, 100), nodata=-9999)))
    out = loader(dict(modality_paths=paths))
    expected = np.zeros((6, 8), bool)
    expected[:2, :3] = True
    np.testing.assert_array_equal(out['nodata_mask'], expected)
    assert (out['img'][expected] == 0).all()  # every modality of a nodata pixel
    assert (out['img'][~expected] == [200, 200, 200, 3]).all()


def test_void_nodata_voids_targets_and_drops_emptied_instances():
    seg = np.arange(48, dtype=np.uint8).reshape(6, 8) % 5
    masks = np.zeros((3, 6, 8), np.uint8)
    masks[0, 0:2, 0:2] = 1  # wholly inside the nodata area: dropped
    masks[1, 1:4, 1:5] = 1  # partly: trimmed to rows 2-3, cols 1-4 plus row 1 cols 3-4
    masks[2, 4:6, 6:8] = 1  # outside: unchanged
    nodata = np.zeros((6, 8), bool)
    nodata[:2, :3] = True
    results = VoidNodata()(dict(
        nodata_mask=nodata, gt_seg_map=seg.copy(), gt_masks=BitmapMasks(masks, 6, 8),
        gt_bboxes=HorizontalBoxes(np.zeros((3, 4), np.float32)),
        gt_bboxes_labels=np.array([0, 1, 2]), gt_ignore_flags=np.zeros(3, bool)))
    assert results['nodata_mask'] is nodata  # kept for the panoptic and instance metrics
    np.testing.assert_array_equal(results['gt_seg_map'], np.where(nodata, 255, seg))
    assert results['gt_bboxes_labels'].tolist() == [1, 2] and len(results['gt_ignore_flags']) == 2
    kept = results['gt_masks'].masks
    np.testing.assert_array_equal(kept[0], masks[1] * ~nodata)
    np.testing.assert_array_equal(kept[1], masks[2])
    # boxes from the trimmed masks: (x0, y0, x1, y1), exclusive ends
    assert results['gt_bboxes'].tensor.tolist() == [[1.0, 1.0, 5.0, 4.0], [6.0, 4.0, 8.0, 6.0]]
    untouched = dict(gt_seg_map=seg.copy(), nodata_mask=np.zeros((6, 8), bool))
    out = VoidNodata()(untouched)
    assert out['gt_seg_map'] is untouched['gt_seg_map'] and 'nodata_mask' not in out


def test_shipped_test_pipeline_gives_void_targets(tmp_path):
    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    root = tmp_path / 'data'
    generate_synthetic(str(root), num_train=1, num_val=1, size=64, progress=False)
    depth_file = str(root / 'depth' / 'val' / 'val_00000.tif')
    depth = tifffile.imread(depth_file)
    depth[10:30, 5:50] = -9999
    tifffile.imwrite(depth_file, depth)
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'pmtseg', 'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'))
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = str(root) + '/'
    loader = next(t for t in dataset_cfg.pipeline if t['type'] == 'LoadMultiModalImages')
    loader['modalities']['depth']['nodata'] = -9999
    sample = DATASETS.build(dataset_cfg)[0]['data_samples']
    gt = sample.gt_sem_seg.sem_seg[0].numpy()
    assert gt.shape == (64, 64)
    assert (gt[10:30, 5:50] == 255).all() and (gt[:10] != 255).all() and (gt[30:] != 255).all()
    for mask in sample.gt_instances.masks.masks:
        assert not mask[10:30, 5:50].any()
    expected = np.zeros((64, 64), bool)
    expected[10:30, 5:50] = True  # packed for the panoptic and instance metrics
    np.testing.assert_array_equal(sample.metainfo['nodata_mask'], expected)


def test_check_dataset_reports_mostly_nodata_images(tmp_path, capsys):
    import importlib.util
    root = tmp_path / 'data'
    generate_synthetic(str(root), num_train=2, num_val=1, size=64, progress=False)
    depth_file = str(root / 'depth' / 'train' / 'train_00001.tif')
    depth = tifffile.imread(depth_file)
    depth[:48] = -9999  # 75 % nodata
    tifffile.imwrite(depth_file, depth)
    spec = importlib.util.spec_from_file_location(
        'check_dataset', osp.join(ROOT, 'tools', 'misc', 'check_dataset.py'))
    check_dataset = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check_dataset)
    config = osp.join(ROOT, 'configs', 'pmtseg',
                      'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py')
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={root}/',
               'train_dataloader.dataset.pipeline.0.modalities.depth.nodata=-9999']
    assert check_dataset.main([config, '--split', 'train'] + options) == 1
    out = capsys.readouterr().out
    assert 'train: 2 samples checked, 1 problem(s)' in out
    assert 'train_00001.tif' in out and 'only 25.0% of the pixels are valid' in out
    assert 'below the threshold 50%' in out
    assert check_dataset.main([config, '--split', 'train', '--min-valid', '0.2'] + options) == 0
    with pytest.raises(SystemExit):
        check_dataset.main([config, '--min-valid', '50'])
    assert '--min-valid is a fraction of the pixels, 0 to 1; got 50.0' in capsys.readouterr().err
