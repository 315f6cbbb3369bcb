"""The onnxruntime backend of the inferencer and of whole-scene inference against the PyTorch
path, on tiny PMTSeg and Mask2Former-EF models fitted in the test (60 iterations on one 64 px
scene: four confident instances), and its refusals of graphs that do not fit the inputs."""
import hashlib
import importlib.util
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime')

from mmdet.evaluation.functional import INSTANCE_OFFSET  # noqa: E402
from mmdet.structures import DetDataSample  # noqa: E402
from mmdet.structures.mask import BitmapMasks  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.structures import InstanceData, PixelData  # noqa: E402

from pmtseg_mm.apis import MultiModalInferencer  # noqa: E402
from pmtseg_mm.deployment.onnx_backend import OnnxRuntimeBackend  # noqa: E402
from pmtseg_mm.deployment.onnx_export import build_model, export_onnx  # noqa: E402
from pmtseg_mm.models.seg_heads.multitask_fusion_head import MultiTaskFusionHead  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = 64
ITERS = 60
TASKS = ('semantic', 'instance', 'panoptic')
#: parity of issue 25: logits, then the share of equal pixels of argmax maps
ATOL = RTOL = 1e-3
EQUAL_PIXELS = 0.999
#: things (y0, y1, x0, x1, label) and stuff (road above, grass below) of the fitted scene
THINGS = [(4, 20, 4, 20, 0), (4, 20, 36, 56, 0), (40, 50, 8, 28, 2), (36, 56, 40, 58, 1)]
COLOURS = {0: (200, 200, 200), 1: (40, 160, 40), 2: (30, 30, 220), 3: (90, 90, 90),
           4: (60, 200, 90)}


def scene(flip: bool = False):
    """Optical (H, W, 3) uint8, depth (H, W) float32 and the ground-truth data sample."""
    sem = np.full((SIZE, SIZE), 3, np.int64)
    sem[SIZE // 2:] = 4
    masks = np.zeros((len(THINGS), SIZE, SIZE), np.uint8)
    for k, (y0, y1, x0, x1, label) in enumerate(THINGS):
        masks[k, y0:y1, x0:x1] = 1
        sem[y0:y1, x0:x1] = label
    noise = np.random.RandomState(int(flip)).randint(-10, 10, (SIZE, SIZE, 3))
    optical = np.zeros((SIZE, SIZE, 3), np.int64)
    for label, colour in COLOURS.items():
        optical[sem == label] = colour
    optical = np.clip(optical + noise, 0, 255).astype(np.uint8)
    depth = np.where(sem <= 1, 8.0, 0.5).astype(np.float32)
    if flip:
        optical, depth, sem, masks = optical[:, ::-1], depth[:, ::-1], sem[:, ::-1], \
            masks[:, :, ::-1]
    shape = (SIZE, SIZE)
    sample = DetDataSample(metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape,
                                         batch_input_shape=shape))
    sample.gt_instances = InstanceData(labels=torch.tensor([t[4] for t in THINGS]),
                                       masks=BitmapMasks(masks.copy(), SIZE, SIZE))
    sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem.copy())[None])
    return np.ascontiguousarray(optical), np.ascontiguousarray(depth), sample


def _tiny_config(kind: str) -> Config:
    """The tiny PMTSeg of the inference tests or the tiny Mask2Former-EF, both with 16-channel
    ResNet-18 backbones, testing at 64 px."""
    if kind == 'pmtseg':
        spec = importlib.util.spec_from_file_location(
            'apis_conftest', osp.join(ROOT, 'tests', 'test_apis', 'conftest.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cfg = module.tiny_config()
    else:
        from pmtseg_mm.utils.config import drop_pretrained
        cfg = Config.fromfile(osp.join(
            ROOT, 'configs', 'baselines',
            'mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'))
        drop_pretrained(cfg.model)
        cfg.model.backbone.backbones = [dict(
            type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), base_channels=16,
            stem_channels=16, init_cfg=None)]
        cfg.model.panoptic_head.in_channels = [16, 32, 64, 128]
    for transform in cfg.test_dataloader.dataset.pipeline:
        if transform['type'] == 'Resize':
            transform['scale'] = (SIZE, SIZE)
    cfg.model.data_preprocessor.batch_augments = None  # no padding to 128 in training
    cfg.model.train_cfg.num_points = 1024
    return cfg


@pytest.fixture(scope='module', params=['pmtseg', 'ef'])
def fitted(request, tmp_path_factory):
    """Both inferencers of a tiny model fitted to :func:`scene`: (kind, PyTorch inferencer,
    onnxruntime inferencer, config path, checkpoint, ONNX path)."""
    torch.manual_seed(0)
    kind = request.param
    cfg = _tiny_config(kind)
    model = build_model(cfg).train()
    optical, depth, sample = scene()
    image = torch.from_numpy(np.concatenate([optical, depth[..., None]], -1).transpose(2, 0, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(ITERS):
        data = model.data_preprocessor(dict(inputs=[image], data_samples=[sample]), True)
        loss = sum(v for k, v in model.loss(data['inputs'], data['data_samples']).items()
                   if 'loss' in k)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    folder = tmp_path_factory.mktemp(kind)
    cfg_path, ckpt, onnx_path = (str(folder / n) for n in ('cfg.py', 'model.pth', 'model.onnx'))
    cfg.dump(cfg_path)
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    export_onnx(cfg, model, onnx_path, tasks=TASKS if kind == 'pmtseg' else None, window=SIZE)
    torch_inf = MultiModalInferencer(cfg_path, ckpt, device='cpu')
    ort_inf = MultiModalInferencer(cfg_path, backend='onnxruntime', onnx=onnx_path,
                                   onnx_threads=1)
    return kind, torch_inf, ort_inf, cfg_path, ckpt, onnx_path


def _inputs():
    return [dict(optical=o, depth=d) for o, d, _ in (scene(), scene(flip=True))]


def test_logits_match_pytorch(fitted):
    """The graph's class and mask logits and semantic scores against the PyTorch network on
    the same preprocessed windows."""
    kind, torch_inf, ort_inf, *_ = fitted
    data, _ = torch_inf.preprocess_chunk(_inputs(), 0, ())
    data = torch_inf.model.data_preprocessor(data, False)
    x, samples = data['inputs'], data['data_samples']
    backend = ort_inf.onnx_backend
    with torch.no_grad():
        if kind == 'pmtseg':
            cls, masks = (p[-1] for p in torch_inf.model._forward(x, samples, tasks=TASKS))
            names = [f'{t}_{k}' for t in TASKS for k in ('cls', 'masks')]
            outs = backend.run(x, names + ['sem_scores'])
            graph_cls, graph_masks = torch.stack(outs[0:6:2], 1), torch.stack(outs[1:6:2], 1)
            sem_cls, sem_masks = cls[:, 0], masks[:, 0]
        else:
            cls, masks = (p[-1] for p in torch_inf.model._forward(x, samples))
            graph_cls, graph_masks, _ = outs = backend.run(x, ('cls', 'masks', 'sem_scores'))
            sem_cls, sem_masks = cls, masks
        up = torch.nn.functional.interpolate(sem_masks, size=(SIZE, SIZE), mode='bilinear',
                                             align_corners=False)
        sem = torch.stack([MultiTaskFusionHead.semantic_scores(c, m)
                           for c, m in zip(sem_cls, up)])
    np.testing.assert_allclose(graph_cls.numpy(), cls.numpy(), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(graph_masks.numpy(), masks.numpy(), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(outs[-1].numpy(), sem.numpy(), atol=ATOL, rtol=RTOL)
    equal = (outs[-1].argmax(1) == sem.argmax(1)).float().mean().item()
    assert equal >= EQUAL_PIXELS


def _match(ref: dict, got: dict, score_thr: float = 0.5) -> int:
    """Every instance of ``ref`` scoring >= ``score_thr`` has one in ``got`` with its label,
    its score (within the tolerance) and mask IoU >= 0.99; returns how many were compared."""
    keep = ref['scores'] >= score_thr
    for label, score, mask in zip(ref['labels'][keep], ref['scores'][keep], ref['masks'][keep]):
        same = np.flatnonzero((got['labels'] == label) & np.isclose(got['scores'], score,
                                                                    atol=ATOL, rtol=RTOL))
        ious = [(mask & got['masks'][j]).sum() / max((mask | got['masks'][j]).sum(), 1)
                for j in same]
        assert ious and max(ious) >= 0.99, (label, score, ious)
    return int(keep.sum())


def test_predictions_match_pytorch(fitted):
    """The inferencer's results with both backends: instances, panoptic segments and (PMTSeg)
    semantic maps."""
    kind, torch_inf, ort_inf, *_ = fitted
    tasks = TASKS if kind == 'pmtseg' else None  # Mask2Former: its test_cfg (instance, panoptic)
    ref = torch_inf(_inputs(), tasks=tasks, batch_size=2)['predictions']
    got = ort_inf(_inputs(), tasks=tasks, batch_size=2)['predictions']
    compared = 0
    for r, g in zip(ref, got):
        assert set(r) == set(g) >= {'instances', 'panoptic'}
        compared += _match(r['instances'], g['instances'])
        assert (r['panoptic'] == g['panoptic']).mean() >= EQUAL_PIXELS
        segments = {int(i) for i in np.unique(r['panoptic'])}
        assert segments == {int(i) for i in np.unique(g['panoptic'])}
        assert len([s for s in segments if s >= INSTANCE_OFFSET]) >= 3  # things found
        if kind == 'pmtseg':
            assert (r['semantic'] == g['semantic']).mean() >= EQUAL_PIXELS
    assert compared >= 6  # the fitted model finds its four things in both inputs, >= 3 each


def _write_scene(folder) -> dict:
    """A 192 x 192 GeoTIFF scene: the fitted scene tiled 3 x 3 (flipped on the diagonal)."""
    import rasterio
    from rasterio.transform import from_origin
    tiles = [[scene(flip=bool((r + c) % 2))[:2] for c in range(3)] for r in range(3)]
    optical = np.concatenate([np.concatenate([t[0] for t in row], 1) for row in tiles], 0)
    depth = np.concatenate([np.concatenate([t[1] for t in row], 1) for row in tiles], 0)
    paths = {}
    for name, data in (('optical', optical.transpose(2, 0, 1)), ('depth', depth[None])):
        paths[name] = str(folder / f'{name}.tif')
        with rasterio.open(paths[name], 'w', driver='GTiff', width=data.shape[2],
                           height=data.shape[1], count=data.shape[0], dtype=data.dtype,
                           crs='EPSG:32631', transform=from_origin(5e5, 4.8e6, 0.5, 0.5)) as f:
            f.write(data)
    return paths


def _demo():
    sys.path.insert(0, osp.join(ROOT, 'demo'))
    try:
        import large_scene_inference
    finally:
        sys.path.pop(0)
    return large_scene_inference


def test_whole_scene_with_both_backends(fitted, tmp_path, monkeypatch):
    """demo/large_scene_inference.py with --backend pytorch and onnxruntime: equal rasters and
    instances; the progress fingerprint names the ONNX file's digest."""
    import rasterio

    from pmtseg_mm.apis.scene import driver
    kind, torch_inf, ort_inf, cfg_path, ckpt, onnx_path = fitted
    paths = _write_scene(tmp_path)
    demo = _demo()
    if kind != 'pmtseg':  # on either backend
        with pytest.raises(TypeError, match='whole-scene inference needs a PMTSeg model'):
            driver.infer_scene(ort_inf.model, ort_inf.spec, paths, str(tmp_path / 'ef'),
                               ort_inf.dataset_meta['classes'], 3, window=SIZE)
        return
    common = [cfg_path, *(f'{k}={v}' for k, v in paths.items()), '--window', str(SIZE),
              '--overlap', '16', '--block-size', '128', '--score-thr', '0.5', '--no-progress']
    ref = demo.main(common + ['--weights', ckpt, '--out-dir', str(tmp_path / 'torch')])[0]
    got = demo.main(common + ['--backend', 'onnxruntime', '--onnx', onnx_path, '--threads', '1',
                              '--out-dir', str(tmp_path / 'ort')])[0]
    assert got['windows_run'] == ref['windows_run'] > 9
    assert got['instances'] == ref['instances'] >= 9
    for key in ('semantic', 'panoptic'):
        with rasterio.open(ref[key]) as a, rasterio.open(got[key]) as b:
            a, b = a.read(1), b.read(1)
        assert (a == b).mean() >= EQUAL_PIXELS
        assert len(np.unique(a)) > 4
    features = [json.load(open(s['geojson']))['features'] for s in (ref, got)]
    assert sorted(f['properties']['class'] for f in features[0]) == sorted(
        f['properties']['class'] for f in features[1])

    # an interrupted onnxruntime run keeps the graph's SHA-256 in its fingerprint
    save_block = driver.SceneProgress.save_block

    def interrupt(self, index, *args):  # a kill after the first block
        if index:
            raise KeyboardInterrupt
        save_block(self, index, *args)

    monkeypatch.setattr(driver.SceneProgress, 'save_block', interrupt)
    with pytest.raises(KeyboardInterrupt):
        demo.main(common + ['--backend', 'onnxruntime', '--onnx', onnx_path,
                            '--out-dir', str(tmp_path / 'cut')])
    with open(tmp_path / 'cut' / 'optical_progress' / 'state.json') as f:
        fingerprint = json.load(f)['fingerprint']
    with open(onnx_path, 'rb') as f:
        assert fingerprint['model'] == 'onnx ' + hashlib.sha256(f.read()).hexdigest()


def test_mismatching_metadata_is_refused(fitted, tmp_path):
    """A graph whose metadata does not fit the config's inputs stops with one error naming the
    file and the key: modalities, channels, normalisation, classes, window, tasks."""
    kind, torch_inf, ort_inf, cfg_path, ckpt, onnx_path = fitted
    backend = ort_inf.onnx_backend
    model = torch_inf.model
    with pytest.raises(ValueError, match=f"{onnx_path}: the ONNX metadata 'modalities'"):
        backend.check(model, ('optical', 'dsm'), (3, 1))
    with pytest.raises(ValueError, match=r"'modalities' is \[\('optical', 3\), \('depth', 1\)\]"
                                         r" but .* is \[\('optical', 3\), \('depth', 2\)\]"):
        backend.check(model, ('optical', 'depth'), (3, 2))
    std = model.data_preprocessor.std.clone()
    model.data_preprocessor.std[0, 0] *= 2
    try:
        with pytest.raises(ValueError, match=f"{onnx_path}: the ONNX metadata 'std'"):
            backend.check(model, ('optical', 'depth'), (3, 1))
    finally:
        model.data_preprocessor.std.copy_(std)
    with pytest.raises(ValueError, match=f"{onnx_path}: the ONNX metadata 'window' is "
                                         r"\[64, 64\] but the input window is \[96, 96\]"):
        backend.run(torch.zeros(1, 4, 96, 96), ['sem_scores'])
    optical, depth, _ = scene()  # 64 x 24 is padded to 64 x 32, not the graph's 64 x 64
    with pytest.raises(ValueError, match=r"'window' is \[64, 64\] but the input window is "
                                         r"\[64, 32\]"):
        ort_inf(dict(optical=optical[:, :24].copy(), depth=depth[:, :24].copy()))
    model.panoptic_fusion_head.num_classes += 1  # a head of another class count
    try:
        with pytest.raises(ValueError, match=f"{onnx_path}: the ONNX metadata 'classes' is "
                                             r"\[.*\] but the config's head is '7 classes'"):
            backend.check(model, ('optical', 'depth'), (3, 1))
    finally:
        model.panoptic_fusion_head.num_classes -= 1
    if kind == 'pmtseg':
        with pytest.raises(ValueError, match=f"{onnx_path}: the ONNX metadata 'window'"):
            ort_inf.model.predict_window_scores(torch.zeros(1, 4, 128, 128), [DetDataSample(
                metainfo=dict(img_shape=(128, 128), batch_input_shape=(128, 128)))])
    # the other model's graph: a PMTSeg one has task prompts, a Mask2Former one has not
    with pytest.raises(ValueError, match=f"{onnx_path}: the ONNX metadata 'task_conditioned'"):
        MultiModalInferencer(_tiny_config('ef' if kind == 'pmtseg' else 'pmtseg'),
                             backend='onnxruntime', onnx=onnx_path)


@pytest.mark.parametrize('kwargs, match', [
    (dict(backend='tensorrt'), 'backend'),
    (dict(onnx='m.onnx'), r'onnx \(--onnx\) is for backend onnxruntime'),
    (dict(backend='onnxruntime'), r'needs the exported graph: onnx \(--onnx\)'),
    (dict(backend='onnxruntime', onnx='m.onnx', weights='m.pth'), r'weights \(--weights\)'),
    (dict(backend='onnxruntime', onnx='m.onnx', device='cuda:0'), r'device \(--device\)'),
])
def test_bad_backend_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiModalInferencer._onnx_backend(kwargs.pop('backend', 'pytorch'),
                                           kwargs.pop('onnx', None), None,
                                           kwargs.pop('weights', None), kwargs.pop('device', None))
    with pytest.raises(FileNotFoundError, match=r"ONNX file \(--onnx\) 'absent.onnx' not found"):
        OnnxRuntimeBackend('absent.onnx')


def test_demo_refuses_contradicting_options(capsys):
    sys.path.insert(0, osp.join(ROOT, 'demo'))
    try:
        import image_demo
    finally:
        sys.path.pop(0)
    config = 'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128'
    with pytest.raises(SystemExit, match=r'error: onnx \(--onnx\) is for backend onnxruntime'):
        image_demo.main([config, 'optical=a.png', '--onnx', 'm.onnx'])
    with pytest.raises(SystemExit, match=r"error: weights \(--weights\) with backend "
                                         'onnxruntime'):
        _demo().main([config, 'optical=a.tif', '--backend', 'onnxruntime', '--onnx', 'm.onnx',
                      '--weights', 'm.pth'])
