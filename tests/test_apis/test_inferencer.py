"""MultiModalInferencer on arrays and paths, with a missing modality, and on bad inputs."""
import glob
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import tifffile
import torch
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmengine.structures import InstanceData, PixelData
from pycocotools import mask as mask_utils

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
    # every non-void id of the returned panoptic map (class = id % INSTANCE_OFFSET, void = class
    # 6 = number of classes) with its pixel count, in id order
    ids, counts = np.unique(from_paths['panoptic'], return_counts=True)
    assert record['panoptic_segments'] == [
        dict(id=int(i), category_id=int(i % INSTANCE_OFFSET), isthing=bool(i >= INSTANCE_OFFSET),
             area=int(n)) for i, n in zip(ids, counts) if i % INSTANCE_OFFSET < 6]
    assert osp.isfile(tmp_path / 'out' / 'preds' / 'scene0_panoptic.png')
    assert osp.isfile(tmp_path / 'out' / 'vis' / 'scene0.png')


def worked_example():
    """A 96x112 prediction whose files are known by hand: road (3) everywhere but a grass (4)
    block (rows 80-95, columns 0-39: 16·40 = 640 px), a building (0) instance (rows 10-29,
    columns 20-49: 20·30 = 600 px), a car (2) instance (rows 60-69, columns 80-99: 10·20 =
    200 px) and a void band (rows 0-3: 4·112 = 448 px); road keeps 96·112 - 640 - 600 - 200 -
    448 = 8864 px."""
    semantic = np.full((96, 112), 3, np.int64)
    semantic[80:, :40] = 4
    masks = np.zeros((2, 96, 112), bool)
    masks[0, 10:30, 20:50] = True
    masks[1, 60:70, 80:100] = True
    semantic[masks[0]], semantic[masks[1]] = 0, 2
    panoptic = semantic.copy()  # stuff: the class id (instance 0)
    panoptic[masks[0]] = 0 + 1 * INSTANCE_OFFSET
    panoptic[masks[1]] = 2 + 2 * INSTANCE_OFFSET
    panoptic[:4] = 6  # void: the number of classes
    semantic[:4] = 3
    instances = InstanceData(labels=torch.tensor([0, 2]), scores=torch.tensor([0.875, 0.5]),
                             bboxes=torch.tensor([[20., 10., 50., 30.], [80., 60., 100., 70.]]),
                             masks=torch.from_numpy(masks))
    return semantic, instances, panoptic


def test_written_files_hold_the_worked_example(inferencer, tmp_path, monkeypatch):
    """The model is replaced by a stub returning :func:`worked_example`, so the JSON areas,
    the RLE masks and the panoptic PNG colours are known numbers."""
    semantic, instances, panoptic = worked_example()

    def stub_test_step(data):
        samples = data['data_samples']
        for sample in samples:
            sample.pred_sem_seg = PixelData(sem_seg=torch.from_numpy(semantic)[None])
            sample.pred_instances = instances
            sample.pred_panoptic_seg = PixelData(sem_seg=torch.from_numpy(panoptic)[None])
        return samples

    monkeypatch.setattr(inferencer.model, 'test_step', stub_test_step)
    paths, _ = write_pair(tmp_path)
    pred = inferencer(paths, out_dir=str(tmp_path / 'out'))['predictions'][0]
    np.testing.assert_array_equal(pred['panoptic'], panoptic)
    pred_dir = tmp_path / 'out' / 'preds'
    with open(pred_dir / 'scene0.json') as f:
        record = json.load(f)
    assert record['panoptic_segments'] == [
        dict(id=3, category_id=3, isthing=False, area=8864),
        dict(id=4, category_id=4, isthing=False, area=640),
        dict(id=INSTANCE_OFFSET, category_id=0, isthing=True, area=600),
        dict(id=2 * INSTANCE_OFFSET + 2, category_id=2, isthing=True, area=200)]
    assert [(i['label'], i['score'], i['bbox']) for i in record['instances']] == [
        (0, 0.875, [20.0, 10.0, 50.0, 30.0]), (2, 0.5, [80.0, 60.0, 100.0, 70.0])]
    for k, item in enumerate(record['instances']):
        rle = dict(size=item['mask']['size'], counts=item['mask']['counts'].encode())
        assert item['mask']['size'] == [96, 112]
        np.testing.assert_array_equal(mask_utils.decode(rle), instances.masks[k].numpy())
    # COCO panoptic PNG: id = R + 256 G + 256² B (building 1000 = (232, 3, 0)); void is black
    bgr = cv2.imread(str(pred_dir / 'scene0_panoptic.png')).astype(np.int64)
    assert bgr[20, 30].tolist() == [0, 3, 232] and bgr[0, 0].tolist() == [0, 0, 0]
    ids = bgr[..., 2] + 256 * bgr[..., 1] + 65536 * bgr[..., 0]
    np.testing.assert_array_equal(ids, np.where(panoptic == 6, 0, panoptic))
    np.testing.assert_array_equal(
        cv2.imread(str(pred_dir / 'scene0_semantic.png'), cv2.IMREAD_UNCHANGED), semantic)


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
