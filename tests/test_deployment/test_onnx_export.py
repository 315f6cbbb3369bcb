"""ONNX export of the tiny PMTSeg (tools/deployment/pytorch2onnx.py): onnxruntime against the
PyTorch model, the graph's operators and metadata, and the exporter's refusals."""
import importlib.util
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

ort = pytest.importorskip('onnxruntime')
onnx = pytest.importorskip('onnx')

from pmtseg_mm.deployment.onnx_export import build_model, export_onnx  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
WINDOW = 64
#: onnxruntime vs PyTorch eager, float32 on the CPU (measured max abs diff ~2e-6 on logits)
ATOL = RTOL = 1e-4


def _tiny_config():
    spec = importlib.util.spec_from_file_location(
        'apis_conftest', osp.join(ROOT, 'tests', 'test_apis', 'conftest.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_config()


@pytest.fixture(scope='module', params=['MSDeformAttnPixelDecoder', 'FastMSDeformAttnPixelDecoder'])
def exported(request, tmp_path_factory):
    """(cfg, model, path) of the tiny PMTSeg with random weights, exported at 64x64; with mmcv's
    deformable attention and with the package's faster CPU one (swapped for mmcv's at export)."""
    torch.manual_seed(0)
    cfg = _tiny_config()
    cfg.model.neck.pixel_decoder.type = request.param
    model = build_model(cfg)
    path = str(tmp_path_factory.mktemp('onnx') / 'pmtseg.onnx')
    export_onnx(cfg, model, path, tasks=('semantic', 'instance', 'panoptic'), window=WINDOW,
                config_name='tiny')
    return cfg, model, path


def _window_meta():
    shape = (WINDOW, WINDOW)
    return dict(batch_input_shape=shape, img_shape=shape, ori_shape=shape)


def test_onnxruntime_matches_pytorch(exported):
    from mmdet.structures import DetDataSample
    _, model, path = exported
    torch.manual_seed(1)
    x = torch.randn(1, 4, WINDOW, WINDOW)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outs = dict(zip([o.name for o in session.get_outputs()],
                    session.run(None, {'inputs': x.numpy()})))
    tasks = ('semantic', 'instance', 'panoptic')
    with torch.no_grad():
        samples = [DetDataSample(metainfo=_window_meta())]
        cls_preds, mask_preds = model._forward(x, samples, tasks=tasks)
        for t, task in enumerate(tasks):
            np.testing.assert_allclose(outs[f'{task}_cls'], cls_preds[-1][:, t].numpy(),
                                       atol=ATOL, rtol=RTOL)
            np.testing.assert_allclose(outs[f'{task}_masks'], mask_preds[-1][:, t].numpy(),
                                       atol=ATOL, rtol=RTOL)
        # the whole-scene path's semantic scores of the semantic prompt
        ref = model.panoptic_fusion_head.window_scores(
            cls_preds[-1][0, 0], mask_preds[-1][0, 0], _window_meta(), ('semantic', ))
    sem = outs['sem_scores']
    assert sem.shape == (1, 6, WINDOW, WINDOW)
    np.testing.assert_allclose(sem[0], ref['sem_scores'].numpy(), atol=ATOL, rtol=RTOL)
    # the prompts matter: the three tasks' logits differ
    assert np.abs(outs['semantic_cls'] - outs['panoptic_cls']).max() > 1e-3
    np.testing.assert_array_equal(sem[0].argmax(0), ref['sem_scores'].argmax(0).numpy())


def test_graph_operators_and_metadata(exported):
    cfg, model, path = exported
    proto = onnx.load(path)
    ops = [n.op_type for n in proto.graph.node]
    # deformable attention as GridSample (2 modalities x 1 encoder layer x 3 levels), standard
    # domain only, no text encoder weights
    assert ops.count('GridSample') == 6
    assert {n.domain for n in proto.graph.node} <= {'', 'ai.onnx'}
    assert proto.opset_import[0].version >= 16
    assert not [i.name for i in proto.graph.initializer if 'text_encoder' in i.name]
    meta = ort.InferenceSession(path, providers=['CPUExecutionProvider']
                                ).get_modelmeta().custom_metadata_map
    modalities = json.loads(meta['modalities'])
    assert [(m['name'], m['channels'], m['dtype']) for m in modalities] == [
        ('optical', 3, ['uint8']), ('depth', 1, ['float32'])]
    # bgr_to_rgb flips the optical channels; mean/std are the preprocessor's, in graph order
    assert json.loads(meta['channel_order']) == [2, 1, 0, 3]
    assert json.loads(meta['mean']) == pytest.approx([123.675, 116.28, 103.53, 1.0171])
    assert json.loads(meta['std']) == pytest.approx([58.395, 57.12, 57.375, 3.0499])
    assert json.loads(meta['classes']) == ['building', 'tree', 'car', 'road', 'grass', 'water']
    assert json.loads(meta['thing_classes']) == ['building', 'tree', 'car']
    assert json.loads(meta['tasks']) == ['semantic', 'instance', 'panoptic']
    assert json.loads(meta['outputs']) == [o.name for o in ort.InferenceSession(
        path, providers=['CPUExecutionProvider']).get_outputs()]
    assert json.loads(meta['window']) == [WINDOW, WINDOW]
    assert json.loads(meta['dynamic_batch']) is False
    assert ort.InferenceSession(path, providers=['CPUExecutionProvider']
                                ).get_inputs()[0].shape == [1, 4, WINDOW, WINDOW]
    assert meta['config'] == 'tiny'
    assert meta['package_version'] == __import__('pmtseg_mm').__version__


@pytest.mark.parametrize('kwargs, option', [
    (dict(window=48), '--window'),
    (dict(tasks=('instance', 'panoptic')), '--tasks'),
    (dict(tasks=('semantic', 'depth')), '--tasks'),
])
def test_bad_options_are_refused(tmp_path, kwargs, option):
    torch.manual_seed(0)
    cfg = _tiny_config()
    model = build_model(cfg)
    with pytest.raises(ValueError, match=option):
        export_onnx(cfg, model, str(tmp_path / 'm.onnx'), **kwargs)
    assert not (tmp_path / 'm.onnx').exists()


def test_cli_exports_a_checkpoint(tmp_path):
    """tools/deployment/pytorch2onnx.py with a saved checkpoint: the graph carries its weights.
    At 96 px the query generator pools 24 x 24 to 16 x 16 (not a divisor), which the exporter's
    adaptive pooling refuses; the export averages with constant matrices instead."""
    torch.manual_seed(2)
    cfg = _tiny_config()
    model = build_model(cfg)
    ckpt = tmp_path / 'tiny.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    cfg_path = tmp_path / 'tiny_cfg.py'
    cfg.dump(str(cfg_path))
    sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
    try:
        import pytorch2onnx
    finally:
        sys.path.pop(0)
    out = tmp_path / 'tiny.onnx'
    meta = pytorch2onnx.main([str(cfg_path), str(ckpt), '--out', str(out), '--window', '96',
                              '--tasks', 'semantic', 'panoptic'])
    assert meta['config'] == 'tiny_cfg'
    assert json.loads(meta['window']) == [96, 96]
    x = np.random.default_rng(0).standard_normal((1, 4, 96, 96)).astype(np.float32)
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    assert [o.name for o in session.get_outputs()] == [
        'semantic_cls', 'semantic_masks', 'panoptic_cls', 'panoptic_masks', 'sem_scores']
    from mmdet.structures import DetDataSample
    meta = dict(batch_input_shape=(96, 96), img_shape=(96, 96))
    with torch.no_grad():
        cls_preds, mask_preds = model._forward(torch.from_numpy(x), [DetDataSample(
            metainfo=meta)], tasks=('semantic', 'panoptic'))
    cls, masks = session.run(['panoptic_cls', 'semantic_masks'], {'inputs': x})
    np.testing.assert_allclose(cls, cls_preds[-1][:, 1].numpy(), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(masks, mask_preds[-1][:, 0].numpy(), atol=ATOL, rtol=RTOL)


def test_mask2former_ef_export_matches_pytorch(tmp_path):
    """The early-fusion Mask2Former baseline: one pass for all tasks (``cls``, ``masks``) and
    the semantic scores of that pass."""
    from mmdet.structures import DetDataSample
    from mmengine.config import Config

    from pmtseg_mm.models.seg_heads.multitask_fusion_head import MultiTaskFusionHead
    from pmtseg_mm.utils.config import drop_pretrained
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(
        ROOT, 'configs', 'baselines',
        'mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'))
    drop_pretrained(cfg.model)
    model = build_model(cfg)
    path = str(tmp_path / 'ef.onnx')
    meta = export_onnx(cfg, model, path, window=WINDOW)
    assert json.loads(meta['outputs']) == ['cls', 'masks', 'sem_scores']
    assert json.loads(meta['classes']) == ['building', 'tree', 'car', 'road', 'grass', 'water']
    assert json.loads(meta['task_conditioned']) is False
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    torch.manual_seed(1)
    x = torch.randn(1, 4, WINDOW, WINDOW)
    cls, masks, sem = session.run(None, {'inputs': x.numpy()})
    with torch.no_grad():
        cls_preds, mask_preds = model._forward(x, [DetDataSample(metainfo=_window_meta())])
        up = torch.nn.functional.interpolate(mask_preds[-1], size=(WINDOW, WINDOW),
                                             mode='bilinear', align_corners=False)
        ref = MultiTaskFusionHead.semantic_scores(cls_preds[-1][0], up[0])
    np.testing.assert_allclose(cls, cls_preds[-1].numpy(), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(masks, mask_preds[-1].numpy(), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(sem[0], ref.numpy(), atol=ATOL, rtol=RTOL)
    np.testing.assert_array_equal(sem[0].argmax(0), ref.argmax(0).numpy())
