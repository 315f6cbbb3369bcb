"""tools/deployment/profile_onnx.py on the tiny PMTSeg graph: the parts of its node profile."""
import os.path as osp
import sys

import pytest
import torch

pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')

from pmtseg_mm.deployment.onnx_export import build_model, export_onnx  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
import profile_onnx  # noqa: E402

sys.path.pop(0)
from test_onnx_backend import _tiny_config  # noqa: E402  (pytest puts this folder on sys.path)


@pytest.mark.parametrize('scope, part', [
    ('/backbone/backbones.1/layer3/layer3.0/conv1/Conv', 'backbone/backbones.1'),
    ('/neck/fusions.0/trans.0.0/Softmax', 'neck/fusions.0'),
    ('/neck/pixel_decoders.0/encoder/layers.2/Add', 'neck/pixel_decoders.0'),
    ('/pixel_decoder/encoder/layers.0/Add', 'pixel_decoder'),
    ('/layers.2/cross_attn/attn/MatMul', 'decoder layers'),
    ('/post_norm_3/LayerNormalization', 'decoder layers'),
    ('/query_generator/layers/layers.0/MatMul', 'query_generator'),
    ('/Einsum_4', 'head, unscoped'),
])
def test_part_of_a_scope(scope, part):
    assert profile_onnx.part_of(scope) == part


def test_profile_of_the_tiny_pmtseg(tmp_path, capsys):
    torch.manual_seed(0)
    cfg = _tiny_config('pmtseg')
    path = str(tmp_path / 'tiny.onnx')
    export_onnx(cfg, build_model(cfg), path, tasks=('semantic', 'instance', 'panoptic'),
                window=64)
    result = profile_onnx.main([path, '--threads', '1', '--repeats', '1'])
    parts = set(result) - {'total'}
    # every backbone, pixel decoder and fusion scale, the decoder and the query generator
    assert {'backbone/backbones.0', 'backbone/backbones.1', 'neck/pixel_decoders.0',
            'neck/pixel_decoders.1', 'neck/fusions.0', 'neck/fusions.1', 'neck/fusions.2',
            'neck/fusions.3', 'decoder layers', 'query_generator', 'head, unscoped'} <= parts
    # one inter-op thread: the nodes run one after another inside the timed run
    assert sum(result[p] for p in parts) <= result['total']
    assert all(result[p] >= 0 for p in parts)
    table = capsys.readouterr().out
    assert table.startswith('tiny.onnx: ')
    assert table.count('\n| ') == len(parts) + 1  # header and one row per part


@pytest.mark.parametrize('argv, message', [
    (['--threads', '0'], '--threads must be >= 1'),
    (['--repeats', '0'], '--repeats must be >= 1'),
])
def test_bad_options_are_refused(tmp_path, capsys, argv, message):
    model = tmp_path / 'm.onnx'
    model.write_bytes(b'')
    with pytest.raises(SystemExit):
        profile_onnx.main([str(model), *argv])
    assert message in capsys.readouterr().err


def test_missing_file_is_refused(capsys):
    with pytest.raises(SystemExit):
        profile_onnx.main(['no_such.onnx'])
    assert "ONNX file 'no_such.onnx' not found" in capsys.readouterr().err
