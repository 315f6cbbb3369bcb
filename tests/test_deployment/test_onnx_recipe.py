"""The runtime recipe without OpenMMLab (tools/deployment/onnx_semantic_map.py): in a subprocess
where torch, mmcv, mmdet, mmengine and mmseg cannot be imported, onnxruntime + numpy read the
exported file's metadata, normalise two modality arrays and give the semantic map, equal to the
PyTorch model's on the package's own preprocessing."""
import importlib.util
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

pytest.importorskip('onnxruntime')

from pmtseg_mm.deployment.onnx_export import build_model, export_onnx  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RECIPE = osp.join(ROOT, 'tools', 'deployment', 'onnx_semantic_map.py')
WINDOW = 64
BLOCKED = ('torch', 'mmcv', 'mmdet', 'mmengine', 'mmseg', 'pmtseg_mm')
#: runs the recipe with the packages above made unimportable, then checks none was loaded
RUNNER = textwrap.dedent(f'''
    import runpy, sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {BLOCKED!r}:
                raise ImportError('blocked: ' + name)
    sys.meta_path.insert(0, Block())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name='__main__')
    loaded = sorted(m for m in sys.modules if m.split('.')[0] in {BLOCKED!r})
    assert not loaded, loaded
''')


def _tiny_config():
    spec = importlib.util.spec_from_file_location(
        'apis_conftest', osp.join(ROOT, 'tests', 'test_apis', 'conftest.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.tiny_config()


def test_recipe_without_openmmlab_gives_the_models_semantic_map(tmp_path):
    from mmdet.structures import DetDataSample
    torch.manual_seed(3)
    cfg = _tiny_config()
    model = build_model(cfg)
    onnx_path = str(tmp_path / 'pmtseg.onnx')
    export_onnx(cfg, model, onnx_path, tasks=('semantic', ), window=WINDOW)
    rng = np.random.default_rng(0)
    optical = rng.integers(0, 256, (WINDOW, WINDOW, 3), dtype=np.uint8)  # BGR, as cv2 loads
    depth = rng.uniform(0, 4, (WINDOW, WINDOW)).astype(np.float32)
    np.save(tmp_path / 'optical.npy', optical)
    np.save(tmp_path / 'depth.npy', depth)
    out = tmp_path / 'sem.npy'
    proc = subprocess.run(
        [sys.executable, '-c', RUNNER, RECIPE, onnx_path, f'optical={tmp_path / "optical.npy"}',
         f'depth={tmp_path / "depth.npy"}', '--out', str(out)],
        capture_output=True, text=True, timeout=120, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith('building: ')
    sem = np.load(out)

    # the package's path: the data preprocessor (channel flip, mean/std), the model, the
    # whole-scene semantic scores
    meta = dict(batch_input_shape=(WINDOW, WINDOW), img_shape=(WINDOW, WINDOW),
                ori_shape=(WINDOW, WINDOW))
    stacked = torch.from_numpy(np.concatenate([optical, depth[..., None]], -1).astype(
        np.float32)).permute(2, 0, 1)
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=[stacked], data_samples=[DetDataSample(metainfo=meta)]), False)
        cls_preds, mask_preds = model._forward(data['inputs'], data['data_samples'],
                                               tasks=('semantic', ))
        ref = model.panoptic_fusion_head.window_scores(
            cls_preds[-1][0, 0], mask_preds[-1][0, 0], meta, ('semantic', ))['sem_scores']
    ref = ref.argmax(0).numpy()
    assert sem.shape == (WINDOW, WINDOW)
    assert (sem == ref).mean() >= 0.999
    # random weights give a near-constant map, so check the recipe's input itself: its
    # normalisation from the metadata equals the data preprocessor's
    recipe = _recipe_module()
    session, onnx_meta = recipe.load(onnx_path)
    np.testing.assert_allclose(recipe.normalise(dict(optical=optical, depth=depth), onnx_meta),
                               data['inputs'].numpy(), rtol=1e-5, atol=1e-5)


def _recipe_module():
    sys.path.insert(0, osp.dirname(RECIPE))
    try:
        import onnx_semantic_map
    finally:
        sys.path.pop(0)
    return onnx_semantic_map


def test_recipe_refuses_a_wrong_window():
    onnx_semantic_map = _recipe_module()
    meta = dict(window=[WINDOW, WINDOW], channel_order=[0], mean=[0.0], std=[1.0],
                modalities=[dict(name='optical', channels=1)])
    with pytest.raises(ValueError, match='exported window'):
        onnx_semantic_map.normalise(dict(optical=np.zeros((32, 32))), meta)
    with pytest.raises(KeyError, match="'optical' is missing"):
        onnx_semantic_map.normalise(dict(depth=np.zeros((WINDOW, WINDOW))), meta)
    np.testing.assert_array_equal(
        onnx_semantic_map.normalise(dict(optical=np.full((WINDOW, WINDOW), 3.0)), meta),
        np.full((1, 1, WINDOW, WINDOW), 3.0, np.float32))
