"""MultiModalInferencer on arrays and paths, with a missing modality, and on bad inputs."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile
import torch

from pmtseg_mm.apis import MultiModalInferencer, find_config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = sorted(glob.glob(osp.join(ROOT, 'configs', 'pmtseg',
                                 'pmtseg_r18-tiny_*_synthetic-depth-128x128.py')))[0]


def arrays(seed=0, size=(96, 112)):
    rng = np.random.RandomState(seed)
    return dict(optical=rng.randint(0, 255, size + (3, )).astype(np.uint8),
                depth=rng.uniform(0, 10, size).astype(np.float32))


def write_pair(folder, seed=0, size=(96, 112)):
    data = arrays(seed, size)
    optical, depth = str(folder / f'scene{seed}.png'), str(folder / f'scene{seed}.tif')
    cv2.imwrite(optical, data['optical'])
    tifffile.imwrite(depth, data['depth'])
    return dict(optical=optical, depth=depth), data


def test_arrays_give_all_three_tasks(inferencer):
    out = inferencer(arrays(), return_vis=True)
    pred = out['predictions'][0]
    assert pred['semantic'].shape == (96, 112) and pred['semantic'].max() < 6
    inst = pred['instances']
    assert inst['masks'].shape[1:] == (96, 112) and len(inst['labels']) == len(inst['scores'])
    assert (inst['labels'] < 3).all()  # instances are things only
    assert pred['panoptic'].shape == (96, 112)
    picture = out['visualization'][0]
    assert picture.dtype == np.uint8 and picture.shape[2] == 3 and picture.shape[1] > 5 * 112


def test_paths_equal_arrays_and_files_are_written(inferencer, tmp_path):
    paths, data = write_pair(tmp_path)
    from_paths = inferencer(paths, out_dir=str(tmp_path / 'out'))['predictions'][0]
    from_arrays = inferencer(data)['predictions'][0]
    np.testing.assert_array_equal(from_paths['semantic'], from_arrays['semantic'])
    np.testing.assert_array_equal(from_paths['panoptic'], from_arrays['panoptic'])
    pred_dir = tmp_path / 'out' / 'preds'
    semantic = cv2.imread(str(pred_dir / 'scene0_semantic.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(semantic, from_paths['semantic'])
    with open(pred_dir / 'scene0.json') as f:
        record = json.load(f)
    assert record['classes'][:3] == ['building', 'tree', 'car']
    assert len(record['instances']) == len(from_paths['instances']['labels'])
    assert sum(s['area'] for s in record['panoptic_segments']) <= 96 * 112
    assert osp.isfile(tmp_path / 'out' / 'preds' / 'scene0_panoptic.png')
    assert osp.isfile(tmp_path / 'out' / 'vis' / 'scene0.png')


def test_batch_and_task_selection(inferencer):
    batch = inferencer([arrays(0), arrays(1)], batch_size=2, tasks=('semantic', ))
    assert len(batch['predictions']) == 2
    assert set(batch['predictions'][0]) == {'semantic'}
    single = inferencer(arrays(1), tasks=('semantic', ))['predictions'][0]
    np.testing.assert_array_equal(batch['predictions'][1]['semantic'], single['semantic'])
    assert inferencer.model.test_tasks == ('semantic', 'instance', 'panoptic')  # restored
    with pytest.raises(ValueError, match='tasks must be distinct names'):
        inferencer(arrays(), tasks=('depth', ))


def test_missing_modality_uses_training_fill(inferencer):
    """missing=('depth',) feeds the depth mean (normalised 0), the same as ModalityDropout;
    a user's own zeros would be a different input."""
    data = arrays()
    declared = inferencer(dict(optical=data['optical']), missing=('depth', ))['predictions'][0]
    mean = float(inferencer.spec.fill_values['depth'][0])
    assert mean == pytest.approx(inferencer.cfg.model.data_preprocessor.mean[1][0])
    filled = inferencer(dict(optical=data['optical'],
                             depth=np.full((96, 112), mean, np.float32)))['predictions'][0]
    np.testing.assert_array_equal(declared['semantic'], filled['semantic'])
    samples = inferencer.preprocess_chunk([dict(optical=data['optical'])], 0, ('depth', ))[0]
    normalised = inferencer.model.data_preprocessor(samples, False)['inputs']
    assert normalised[0, 3].abs().max().item() < 1e-5


def test_config_name_and_bad_config():
    assert find_config('pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128').endswith(
        'configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py')
    with pytest.raises(FileNotFoundError, match='neither a file nor a config name'):
        MultiModalInferencer('no_such_config')


def test_bad_inputs(inferencer, tmp_path):
    data = arrays()
    paths, _ = write_pair(tmp_path)
    cases = [
        (dict(optical=data['optical'], depth=np.zeros((80, 112), np.float32)), ValueError,
         "modalities differ in size: 'optical' \\(array\\) is 96x112"),
        (dict(optical=data['optical'], depth=np.zeros((96, 112, 2), np.float32)), ValueError,
         "`modalities.depth.channels` expects 1 channel\\(s\\) but the input array gives 2"),
        (dict(optical=data['optical'][..., :2], depth=data['depth']), ValueError,
         "`modalities.optical.channels` expects 3 channel\\(s\\) but the input array gives 2"),
        (dict(optical=paths['optical'], depth=str(tmp_path / 'nope.tif')), FileNotFoundError,
         "input file of modality 'depth' not found: .*nope.tif"),
        (dict(optical=data['optical']), ValueError, "no input for modalities \\['depth'\\]"),
        (dict(optical=data['optical'], depth=data['depth'], sar=data['depth']), ValueError,
         "\\['sar'\\] are not in the config"),
        (dict(optical=data['optical'], depth=np.full((96, 112), np.nan, np.float32)),
         ValueError, "modality 'depth' input array contains NaN pixels \\(10752\\); set "
         "`modalities.depth.nan_value`"),
        (dict(optical=data['optical'], depth=[[1.0]]), TypeError, 'path or a numpy array'),
        ('optical.png', TypeError, 'must be a dict modality name'),
    ]
    for inputs, error, match in cases:
        with pytest.raises(error, match=match):
            inferencer(inputs)
    small = str(tmp_path / 'small.tif')
    tifffile.imwrite(small, np.zeros((80, 112), np.float32))
    with pytest.raises(ValueError, match='differ in size.*scene0.png.*small.tif'):
        inferencer(dict(optical=paths['optical'], depth=small))
    with pytest.raises(ValueError, match='declared missing but were also given'):
        inferencer(data, missing=('depth', ))
    with pytest.raises(ValueError, match='declares every modality missing'):
        inferencer(dict(), missing=('optical', 'depth'))
    with pytest.raises(ValueError, match="\\['sar'\\] are not modalities of the config"):
        inferencer(dict(optical=data['optical']), missing=('sar', ))


def test_checkpoint_is_loaded(inferencer, tiny_cfg, tmp_path):
    torch.manual_seed(1)
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=inferencer.model.state_dict(),
                    meta=dict(dataset_meta=dict(classes=list(inferencer.dataset_meta['classes']),
                                                palette=[(1, 2, 3)] * 6))), ckpt)
    loaded = MultiModalInferencer(tiny_cfg, weights=ckpt, device='cpu')
    assert loaded.dataset_meta['palette'][0] == (1, 2, 3)
    np.testing.assert_array_equal(loaded(arrays())['predictions'][0]['semantic'],
                                  inferencer(arrays())['predictions'][0]['semantic'])
