"""Bit depth is never silent: the shipped synthetic config declares each modality's dtype, so a
16-bit optical file under its 8-bit statistics is refused by the loader, check_dataset, the
inferencer and whole-scene inference alike (one contract), naming the file, the modality and the
remedies; an absolute DSM under normalised-DSM statistics is refused by the preprocessor."""
import os.path as osp
import subprocess
import sys

import mmcv
import numpy as np
import pytest

from _geotiff import write_scene
from pmtseg_mm.apis.scene import infer_scene
from pmtseg_mm.datasets.synthetic import generate_synthetic
from pmtseg_mm.structures import InvalidDataError

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(ROOT, 'configs', 'pmtseg',
                  'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py')
REMEDIES = ('modality_stats.json', '`modalities.optical.rescale=(low, high)`',
            "`modalities.optical.on_mismatch='warn'`")


def assert_names_file_and_remedies(message: str, path: str) -> None:
    assert "modality 'optical'" in message and path in message
    assert 'is uint16 but `modalities.optical.dtype` expects uint8' in message
    assert all(remedy in message for remedy in REMEDIES), message


def optical16(size=(64, 64)) -> np.ndarray:
    return np.random.RandomState(0).randint(0, 4000, size + (3, )).astype(np.uint16)


def test_shipped_configs_declare_dtypes():
    from mmengine.config import Config
    for name in ('synthetic_depth_128', 'synthetic_optical_128', 'valid_512', 'ubcv2_512',
                 'semcity_toulouse_128'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets', f'{name}.py'))
        for modality, options in cfg.modalities.items():
            assert options.get('dtype') or options.get('value_range'), (name, modality)
        assert cfg.modalities['optical']['dtype'] == 'uint8'


def test_loader_and_inferencer_refuse_16bit_optical(inferencer, tmp_path):
    path = str(tmp_path / 'o16.png')
    mmcv.imwrite(optical16(), path)
    depth = np.zeros((64, 64), np.float32)
    with pytest.raises(InvalidDataError) as err:
        inferencer(dict(optical=path, depth=depth))
    assert_names_file_and_remedies(str(err.value), path)
    with pytest.raises(InvalidDataError) as err:
        inferencer(dict(optical=optical16(), depth=depth))
    assert_names_file_and_remedies(str(err.value), 'input array')


def test_whole_scene_refuses_16bit_optical(inferencer, tmp_path):
    paths = write_scene(tmp_path, dict(optical=np.moveaxis(optical16((96, 96)), -1, 0),
                                       depth=np.zeros((1, 96, 96), np.float32)))
    with pytest.raises(InvalidDataError) as err:
        infer_scene(inferencer.model, inferencer.spec, paths, str(tmp_path / 's'),
                    inferencer.dataset_meta['classes'], 3, window=64, overlap=16,
                    progress=False)
    assert_names_file_and_remedies(str(err.value), paths['optical'])
    assert not osp.exists(tmp_path / 's_semantic.tif')


@pytest.mark.slow
def test_check_dataset_reports_16bit_optical(tmp_path):
    root = tmp_path / 'data'
    generate_synthetic(str(root), num_train=2, num_val=1, size=64, progress=False)
    bad = sorted((root / 'optical' / 'train').iterdir())[0]
    mmcv.imwrite(optical16(), str(bad))
    done = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'misc', 'check_dataset.py'), CONFIG,
         '--split', 'train', '--cfg-options', f'train_dataloader.dataset.data_root={root}/'],
        capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert 'train: 2 samples checked, 1 problem(s)' in done.stdout
    assert_names_file_and_remedies(done.stdout.replace('\n', ' '), str(bad))


def test_absolute_dsm_is_refused_with_the_ndsm_advice(inferencer):
    """The synthetic depth statistics are heights above ground (mean 1.02 m, std 3.05 m): a DSM
    of 150 m above sea level lies (150 - 1.02) / 3.05 = 48.8 std from the mean."""
    rng = np.random.RandomState(0)
    optical = rng.randint(0, 255, (64, 64, 3)).astype(np.uint8)
    with pytest.raises(ValueError) as err:
        inferencer(dict(optical=optical, depth=np.full((64, 64), 150.0, np.float32)))
    message = str(err.value)
    assert "modality 'depth'" in message and 'lies +48.8 std from the mean' in message
    assert 'nDSM = DSM - DTM' in message and 'max_median_std' in message
    out = inferencer(dict(optical=optical, depth=np.full((64, 64), 2.0, np.float32)))
    assert len(out['predictions']) == 1  # heights above ground pass
