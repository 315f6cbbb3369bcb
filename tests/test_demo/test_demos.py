"""demo/image_demo.py and demo/large_scene_inference.py end to end on a tiny random model."""
import glob
import importlib.util
import json
import os.path as osp
import resource
import time

import cv2
import numpy as np
import pytest
import rasterio
import tifffile
import torch
from rasterio.transform import from_origin

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = sorted(glob.glob(osp.join(ROOT, 'configs', 'pmtseg',
                                 'pmtseg_r18-tiny_*_synthetic-depth-128x128.py')))[0]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'demo', name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_thread():
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope='module')
def config_file(tmp_path_factory):
    """The tiny config with 16-channel ResNet-18s, as a user's config inheriting it (a dumped
    Config would sort the `modalities` dict and change the channel order)."""
    path = tmp_path_factory.mktemp('cfg') / 'tiny.py'
    path.write_text(
        f'_base_ = {TINY!r}\n'
        "r18 = dict(type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), "
        'base_channels=16, stem_channels=16, init_cfg=None)\n'
        'model = dict(backbone=dict(backbones=[r18, r18]), '
        'neck=dict(in_channels=[[16, 32, 64, 128], [16, 32, 64, 128]]))\n')
    return str(path)


def test_image_demo_writes_picture_and_predictions(config_file, tmp_path):
    rng = np.random.RandomState(0)
    optical, depth = str(tmp_path / 'tile.png'), str(tmp_path / 'tile.tif')
    cv2.imwrite(optical, rng.randint(0, 255, (64, 80, 3)).astype(np.uint8))
    tifffile.imwrite(depth, rng.uniform(0, 5, (64, 80)).astype(np.float32))
    demo = load_script('image_demo')
    out = str(tmp_path / 'out')
    result = demo.main([config_file, f'optical={optical}', f'depth={depth}', '--out-dir', out])
    assert result['predictions'][0]['semantic'].shape == (64, 80)
    picture = cv2.imread(osp.join(out, 'vis', 'tile.png'))
    assert picture.shape[0] > 64 and picture.shape[1] >= 5 * 80  # optical|depth|sem|ins|pan
    for suffix in ('_semantic.png', '_panoptic.png', '.json'):
        assert osp.isfile(osp.join(out, 'preds', 'tile' + suffix))
    missing = demo.main([config_file, f'optical={optical}', '--missing', 'depth', '--tasks',
                         'semantic', '--out-dir', str(tmp_path / 'm')])
    assert set(missing['predictions'][0]) == {'semantic'}
    with pytest.raises(SystemExit, match='must be MODALITY=PATH'):
        demo.main([config_file, optical])


def write_scene(folder, name, height=160, width=200):
    rng = np.random.RandomState(1)
    profile = dict(driver='GTiff', width=width, height=height, crs='EPSG:32631',
                   transform=from_origin(500000, 4800000, 1.0, 1.0))
    paths = dict(optical=str(folder / f'{name}_rgb.tif'), depth=str(folder / f'{name}_dsm.tif'))
    with rasterio.open(paths['optical'], 'w', count=3, dtype='uint8', **profile) as f:
        f.write(rng.randint(0, 255, (3, height, width)).astype(np.uint8))
    with rasterio.open(paths['depth'], 'w', count=1, dtype='float32', **profile) as f:
        f.write(rng.uniform(0, 5, (1, height, width)).astype(np.float32))
    return paths


def test_large_scene_demo_one_scene(config_file, tmp_path):
    paths = write_scene(tmp_path, 'a')
    demo = load_script('large_scene_inference')
    out = str(tmp_path / 'out')
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB
    start = time.perf_counter()
    [summary] = demo.main([config_file, f'optical={paths["optical"]}', f'depth={paths["depth"]}',
                           '--out-dir', out, '--overlap', '32', '--no-progress'])
    elapsed = time.perf_counter() - start
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # 160 x 200 px in 128 px windows with a 32 px overlap (stride 96): ceil((160-128)/96)+1 = 2
    # rows, ceil((200-128)/96)+1 = 2 columns
    assert summary['window'] == 128 and summary['windows_in_grid'] == 2 * 2
    assert summary['windows_run'] == 4 and summary['windows_nodata'] == 0
    # this process's peak memory, read between the two readings around the call
    assert rss_before - 0.05 <= summary['peak_rss_mb'] <= rss_after + 0.05
    assert 0 < summary['seconds'] <= elapsed + 0.01
    # 4 windows over the unrounded time; both figures are rounded to 2 decimals
    seconds = summary['seconds']
    assert 4 / (seconds + 0.005) - 0.005 <= summary['windows_per_s'] <= 4 / max(
        seconds - 0.005, 1e-3) + 0.005
    with open(osp.join(out, 'a_rgb_summary.json')) as f:
        assert json.load(f)['scene'] == 'a_rgb'
    with rasterio.open(summary['semantic']) as sem:
        assert (sem.height, sem.width) == (160, 200) and sem.crs.to_epsg() == 32631


def test_large_scene_demo_shards_a_scene_list(config_file, tmp_path, monkeypatch):
    first, second = write_scene(tmp_path, 'a'), write_scene(tmp_path, 'b')
    scene_list = tmp_path / 'scenes.txt'
    scene_list.write_text('# name modality=path ...\n'
                          f'first optical={first["optical"]}\n\n'
                          f'second optical={second["optical"]}  # no DSM here\n')
    demo = load_script('large_scene_inference')
    monkeypatch.setattr(demo, 'get_dist_info', lambda: (1, 2))  # rank 1 of 2
    monkeypatch.setattr(demo, 'barrier', lambda: None)
    out = str(tmp_path / 'out')
    summaries = demo.main([config_file, '--scene-list', str(scene_list), '--out-dir', out,
                           '--no-progress', '--missing', 'depth'])
    assert [s['scene'] for s in summaries] == ['second']
    assert osp.isfile(osp.join(out, 'second_panoptic.tif'))
    assert not osp.exists(osp.join(out, 'first_semantic.tif'))
    bad = tmp_path / 'bad.txt'
    bad.write_text(f'optical={first["optical"]}\n')
    with pytest.raises(SystemExit, match='bad.txt:1: expected NAME MODALITY=PATH'):
        demo.main([config_file, '--scene-list', str(bad)])
    with pytest.raises(SystemExit, match='either MODALITY=PATH inputs of one scene or'):
        demo.main([config_file])
    with pytest.raises(SystemExit, match=r"--nodata expects MODALITY=NUMBER \(nan allowed\), "
                       r"got 'depth=none'"):
        demo.main([config_file, f'optical={first["optical"]}', '--nodata', 'depth=none'])
