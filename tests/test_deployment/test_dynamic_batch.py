"""``pytorch2onnx.py --dynamic-batch``: tiny PMTSeg and Mask2Former-EF graphs with a dynamic
batch axis give PyTorch's outputs for every image of batches of 1 and 3, and the onnxruntime
backend sends such a batch in one session call."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
import torch

ort = pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')

from mmdet.structures import DetDataSample  # noqa: E402

from pmtseg_mm.deployment.onnx_backend import OnnxRuntimeBackend  # noqa: E402
from pmtseg_mm.deployment.onnx_export import build_model  # noqa: E402
from pmtseg_mm.models.seg_heads.multitask_fusion_head import MultiTaskFusionHead  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
import pytorch2onnx  # noqa: E402

sys.path.pop(0)
from test_onnx_backend import _tiny_config  # noqa: E402  (pytest puts this folder on sys.path)

WINDOW = 64
TASKS = ('semantic', 'instance', 'panoptic')
#: onnxruntime vs PyTorch eager, float32 on the CPU
ATOL = 1e-4


@pytest.fixture(scope='module', params=['pmtseg', 'ef'])
def dynamic(request, tmp_path_factory):
    """(kind, model, path): the tiny model (random weights) exported through the CLI with
    ``--dynamic-batch`` from a saved checkpoint."""
    kind = request.param
    torch.manual_seed(0)
    cfg = _tiny_config(kind)
    model = build_model(cfg)
    folder = tmp_path_factory.mktemp(f'dynamic_{kind}')
    torch.save(dict(state_dict=model.state_dict()), folder / 'tiny.pth')
    cfg.dump(str(folder / 'tiny_cfg.py'))
    path = str(folder / 'tiny.onnx')
    tasks = ['--tasks', *TASKS] if kind == 'pmtseg' else []
    meta = pytorch2onnx.main([str(folder / 'tiny_cfg.py'), str(folder / 'tiny.pth'), '--out',
                              path, '--window', str(WINDOW), '--dynamic-batch', *tasks])
    assert json.loads(meta['dynamic_batch']) is True
    return kind, model, path


def _reference(kind, model, x):
    """PyTorch's last-layer outputs by graph output name, one image at a time."""
    meta = dict(batch_input_shape=(WINDOW, WINDOW), img_shape=(WINDOW, WINDOW))
    refs = {}
    for image in x:
        with torch.no_grad():
            if kind == 'pmtseg':
                cls_preds, mask_preds = model._forward(
                    image[None], [DetDataSample(metainfo=meta)], tasks=TASKS)
                cls_all, mask_all = cls_preds[-1][0], mask_preds[-1][0]
                outs = {f'{t}_{k}': v for i, t in enumerate(TASKS)
                        for k, v in (('cls', cls_all[i]), ('masks', mask_all[i]))}
                sem_cls, sem_masks = cls_all[0], mask_all[0]
            else:
                cls_preds, mask_preds = model._forward(image[None],
                                                       [DetDataSample(metainfo=meta)])
                sem_cls, sem_masks = cls_preds[-1][0], mask_preds[-1][0]
                outs = dict(cls=sem_cls, masks=sem_masks)
            up = torch.nn.functional.interpolate(sem_masks[None], size=(WINDOW, WINDOW),
                                                 mode='bilinear', align_corners=False)[0]
            outs['sem_scores'] = MultiTaskFusionHead.semantic_scores(sem_cls, up)
        for name, value in outs.items():
            refs.setdefault(name, []).append(value.numpy())
    return refs


@pytest.mark.parametrize('batch', [1, 3])
def test_dynamic_batch_matches_pytorch_per_image(dynamic, batch):
    kind, model, path = dynamic
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    assert session.get_inputs()[0].shape == ['batch', 4, WINDOW, WINDOW]
    names = [o.name for o in session.get_outputs()]
    assert all(o.shape[0] == 'batch' for o in session.get_outputs())
    x = torch.randn(batch, 4, WINDOW, WINDOW, generator=torch.Generator().manual_seed(batch))
    outs = dict(zip(names, session.run(None, {'inputs': x.numpy()})))
    refs = _reference(kind, model, x)
    assert set(refs) == set(names)
    for name in names:
        assert outs[name].shape[0] == batch
        for b in range(batch):
            np.testing.assert_allclose(outs[name][b], refs[name][b], atol=ATOL, rtol=0,
                                       err_msg=f'{name}, image {b}')
    if batch == 3:  # the images differ, so the rows are not one image repeated
        assert np.abs(outs[names[0]][0] - outs[names[0]][2]).max() > 1e-3


class CountingSession:
    """An onnxruntime session that counts its ``run`` calls and the batch of each."""

    def __init__(self, session) -> None:
        self.session, self.batches = session, []

    def run(self, names, feeds):
        self.batches.append(len(feeds['inputs']))
        return self.session.run(names, feeds)


def test_backend_sends_a_dynamic_batch_in_one_call(dynamic):
    kind, model, path = dynamic
    backend = OnnxRuntimeBackend(path, threads=1)
    assert backend.dynamic_batch
    backend.session = CountingSession(backend.session)
    x = torch.randn(3, 4, WINDOW, WINDOW, generator=torch.Generator().manual_seed(5))
    name = 'panoptic_cls' if kind == 'pmtseg' else 'cls'
    out, = backend.run(x, [name])
    assert backend.session.batches == [3]
    np.testing.assert_allclose(out.numpy(), np.stack(_reference(kind, model, x)[name]),
                               atol=ATOL, rtol=0)
