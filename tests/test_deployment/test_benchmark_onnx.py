"""tools/deployment/benchmark_onnx.py at toy size: one run gives both backends' latencies of
both models, their ratios and the whole-scene windows/s."""
import os.path as osp
import re
import sys

import pytest

pytest.importorskip('onnxruntime')

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _script():
    sys.path.insert(0, osp.join(ROOT, 'tools', 'deployment'))
    try:
        import benchmark_onnx
    finally:
        sys.path.pop(0)
    return benchmark_onnx


def test_benchmark_reports_both_backends_and_ratios():
    table = _script().main([
        '--pmtseg', 'pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128',
        '--ef', 'mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128',
        '--window', '64', '--repeats', '1', '--threads', '1', '--scene-size', '128',
        '--scene-window', '64'])
    assert table.startswith('64x64 window, batch 1, 1 threads, median of 1')
    rows = re.findall(r'\| (\S+)(?: \(3 tasks\))? \| (network|predict) \| ([\d.]+) \| ([\d.]+) \| '
                      r'([\d.]+)x \|', table)
    assert [(r[0][:6], r[1]) for r in rows] == [
        ('pmtseg', 'network'), ('pmtseg', 'predict'), ('mask2f', 'network'),
        ('mask2f', 'predict')]
    for _, _, torch_ms, ort_ms, speedup in rows:
        assert float(speedup) == pytest.approx(float(torch_ms) / float(ort_ms), rel=0.2)
    assert len(re.findall(r'\| PMTSeg / EF \| (network|predict) \| [\d.]+x \| [\d.]+x \|',
                          table)) == 2
    assert re.search(r'PyTorch [\d.]+ windows/s, onnxruntime [\d.]+ windows/s \([\d.]+x\)',
                     table)


def test_bad_option_is_refused(capsys):
    with pytest.raises(SystemExit):
        _script().main(['--threads', '0'])
    assert '--threads must be >= 1' in capsys.readouterr().err
