"""tools/analysis_tools/benchmark_models.py: one table for tiny models, config overrides,
pixel-decoder replacement, and one clear error per bad argument."""
import importlib.util
import json
import os
import os.path as osp
import re
import time
import types

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.layers import MSDeformAttnPixelDecoder
from mmengine.config import ConfigDict

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'benchmark_models', osp.join(ROOT, 'tools', 'analysis_tools', 'benchmark_models.py'))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

PMTSEG = 'configs/pmtseg/pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
M2F = 'configs/baselines/mask2former-ef_r18-tiny_1xb4-1000it_synthetic-depth-128x128.py'
LAYERS = 'model.neck.pixel_decoder.encoder.num_layers'
#: parameters in millions: the counts of configs/{baselines,pmtseg}/metafile.yml, which
#: test_interop/test_model_index.py checks against the built models
PARAMS_M = {M2F: 11.554071, PMTSEG: 26.884071}
#: this machine's memory in MiB: no process's peak RSS can exceed it
PHYSICAL_MIB = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**20


def check_timing_and_memory(row: dict, elapsed: float) -> None:
    """Latencies and peak memory depend on the machine and its load, so no value can be known:
    a latency (a median of timed passes inside the run) lies in (0, elapsed), the wall time of
    the whole benchmark call; the worker's peak RSS is at least its RSS at start
    (``base_rss_mib``) and the float32 parameters (4 bytes each), and at most the machine's
    memory."""
    for key, value in row.items():
        if key.startswith('latency_') and key.endswith('_s') or key == 'train_step_s':
            assert 0 < value < elapsed, (key, value, elapsed)
        if key.startswith('peak_mem_') and key.endswith('_mib'):
            params_mib = row['params_m'] * 1e6 * 4 / 2**20
            assert max(row['base_rss_mib'], params_mib) <= value < PHYSICAL_MIB, (key, value)


def test_table_one_row_per_config(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # configs resolve against the repository root from any cwd
    out = tmp_path / 'rows.json'
    start = time.perf_counter()
    bench.main([M2F, PMTSEG, '--device', 'cpu', '--threads', '1', '--size', '64',
                '--train-size', '64', '--train-batch', '1', '--repeats', '1', '--warmup', '0',
                '--out', str(out)])
    elapsed = time.perf_counter() - start
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith('| ')]
    assert len(table) == 3  # header + one row per config
    header = [c.strip() for c in table[0].strip('|').split('|')]
    assert header[0] == 'model' and len(header) == 1 + len(bench.COLUMNS)
    rows = json.loads(out.read_text())['rows']
    assert [r['name'] for r in rows] == [osp.splitext(osp.basename(p))[0] for p in (M2F, PMTSEG)]
    for i, line in enumerate(table[1:]):
        cells = [c.strip() for c in line.strip('|').split('|')]
        assert cells[0] == rows[i]['name']
        for (key, _, fmt), cell in zip(bench.COLUMNS, cells[1:]):
            # each cell is the row's value in the column's format and its ratio to row 1
            match = re.fullmatch(r'([0-9.e+-]+) \(×([0-9.]+)\)', cell)
            assert match, cell
            assert match.group(1) == fmt.format(rows[i][key])
            assert float(match.group(2)) == pytest.approx(rows[i][key] / rows[0][key], abs=0.005)
    m2f, pmtseg = rows
    for spec, row in zip((M2F, PMTSEG), rows):
        assert row['params_m'] == pytest.approx(PARAMS_M[spec], abs=1e-6)
        # the worker's FLOP count equals the same count done here on the same model and size
        model = bench.build_model(bench.load_config(spec)[1], 'cpu')
        assert row['gflops'] == pytest.approx(bench.measure_flops(model, 64, 'cpu')[0], rel=1e-9)
        check_timing_and_memory(row, elapsed)
    assert pmtseg['params_ratio'] == pytest.approx(26.884071 / 11.554071)
    assert m2f['gflops'] < pmtseg['gflops']  # two pixel decoders and the fusion


def test_override_changes_the_model():
    name, cfg = bench.load_config(f'{PMTSEG}@{LAYERS}=2,model.neck.max_kv_tokens=128')
    assert name == (osp.splitext(osp.basename(PMTSEG))[0]
                    + f'@{LAYERS}=2,model.neck.max_kv_tokens=128')
    assert cfg.model.neck.pixel_decoder.encoder.num_layers == 2
    assert cfg.model.neck.max_kv_tokens == 128
    _, base = bench.load_config(PMTSEG)
    assert base.model.neck.pixel_decoder.encoder.num_layers == 1
    one, two = (bench.num_params(bench.build_model(c, 'cpu')) for c in (base, cfg))
    assert two > one  # a second encoder layer of the pixel decoder of each modality
    # values as --cfg-options parses them; commas inside brackets belong to the value
    path, overrides = bench.split_spec('a.py@model.test_cfg.tasks=(semantic,panoptic),x.y=1,2')
    assert path == 'a.py' and overrides == [('model.test_cfg.tasks', '(semantic,panoptic)'),
                                            ('x.y', '1,2')]
    _, cfg = bench.load_config(f'{PMTSEG}@model.test_cfg.tasks=(semantic,panoptic)')
    assert tuple(cfg.model.test_cfg.tasks) == ('semantic', 'panoptic')
    # +KEY adds a key the config does not list (its parent must exist)
    name, cfg = bench.load_config(f'{PMTSEG}@+model.test_cfg.new_flag=False')
    assert cfg.model.test_cfg.new_flag is False and name.endswith('@+model.test_cfg.new_flag=False')


def test_pixel_decoder_replacement():
    tree = ConfigDict(
        neck=dict(pixel_decoder=dict(type='MSDeformAttnPixelDecoder', num_outs=3)),
        heads=[dict(type='PSHHead', pixel_decoder=dict(type='FastMSDeformAttnPixelDecoder'))],
        other=dict(type='PixelDecoder'))
    assert bench.replace_type(tree, MSDeformAttnPixelDecoder, 'Fast') == 2  # class or subclass
    assert tree.neck.pixel_decoder == dict(type='Fast', num_outs=3)
    assert tree.heads[0].pixel_decoder.type == 'Fast' and tree.heads[0].type == 'PSHHead'
    assert tree.other.type == 'PixelDecoder'
    # Python-style configs give classes
    assert bench.replace_type([dict(type=MSDeformAttnPixelDecoder)], MSDeformAttnPixelDecoder,
                              'Fast') == 1
    # both sides of a comparison get the same implementation (mmdet's plain one exists)
    _, pmtseg = bench.load_config(PMTSEG, pixel_decoder='PixelDecoder')
    _, m2f = bench.load_config(M2F, pixel_decoder='PixelDecoder')
    assert pmtseg.model.neck.pixel_decoder.type == 'PixelDecoder'
    assert m2f.model.panoptic_head.pixel_decoder.type == 'PixelDecoder'
    assert 'MSDeformAttnPixelDecoder' not in str(pmtseg.model) + str(m2f.model)
    _, mmcv_side = bench.load_config(M2F, pixel_decoder='MSDeformAttnPixelDecoder')  # and back
    assert mmcv_side.model.panoptic_head.pixel_decoder.type == 'MSDeformAttnPixelDecoder'
    assert m2f.model.panoptic_fusion_head.type == 'MultiTaskFusionHead'  # semantic for Mask2Former


@pytest.mark.parametrize('argv, message', [
    (['missing.py'], 'config file not found: missing.py'),
    ([f'{PMTSEG}@num_layers'], "bad override 'num_layers'"),
    ([f'{PMTSEG}@model.neck.no_such_key=3'], 'unknown key `model.neck.no_such_key`: '
     '`no_such_key` is not in model.neck'),
    ([f'{M2F}@model.neck.max_kv_tokens=3'], '`neck` is not in model'),
    ([f'{PMTSEG}@+model.no_such_dict.x=3'], '`no_such_dict` is not in model'),
    ([f'{PMTSEG}@model.backbone.backbones.1.type=mmdet.NoSuchBackbone'],
     "`model.backbone.backbones.1.type`='mmdet.NoSuchBackbone' is not registered in its scope"),
])
def test_bad_specs_give_one_error(argv, message):
    with pytest.raises(SystemExit, match=re.escape(message)):
        bench.main(argv + ['--device', 'cpu'])


@pytest.mark.parametrize('argv, message', [
    (['--skip', 'flops,speed'], "--skip: unknown part(s) ['speed']"),
    (['--pixel-decoder', 'NoSuchDecoder'], "'NoSuchDecoder' is not a registered model type"),
    (['--repeats', '0'], '--repeats must be >= 1'),
])
def test_bad_options_give_one_error(argv, message, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args([PMTSEG, '--device', 'cpu'] + argv)
    assert message in capsys.readouterr().err


def _torchvision_imports() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 (absent, or a build that does not match the torch)
        return False
    return True


@pytest.mark.skipif(_torchvision_imports(), reason='the error for a missing torchvision')
def test_mmpretrain_backbone_without_torchvision_stops_before_measuring(capsys):
    spec = f'{PMTSEG}@model.backbone.backbones.1.type=mmpretrain.ConvNeXt'
    with pytest.raises(SystemExit, match=re.escape(
            "`model.backbone.backbones.1.type`='mmpretrain.ConvNeXt' cannot be imported "
            "(No module named 'torchvision'): PMTSEG_TORCHVISION=1 bash tools/install.sh")):
        bench.main([spec, '--device', 'cpu'])
    assert 'building the model' not in capsys.readouterr().err  # no worker was started


class ConvNet(torch.nn.Module):
    """A model-shaped stub for ``measure_flops``: 3 + 1 input channels, two convolutions, a
    fused attention and a ``baddbmm``, so the FLOPs can be counted by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv2d(4, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 2, 1, stride=2)
        self.data_preprocessor = types.SimpleNamespace(modality_channels=(3, 1))
        self.panoptic_fusion_head = types.SimpleNamespace(test_cfg={})  # what select_tasks sets

    def _forward(self, inputs, data_samples):
        x = self.conv2(torch.relu(self.conv1(inputs)))  # (1, 2, 8, 8)
        tokens = x.flatten(2).transpose(1, 2)  # (1, 64, 2)
        attended = F.scaled_dot_product_attention(tokens[:, None], tokens[:, None], tokens[:, None])
        similarity = torch.baddbmm(torch.zeros(1, 64, 64), tokens, tokens.transpose(1, 2))
        return attended, [similarity]


def test_flops_of_a_small_net_equal_a_hand_count():
    """One multiply-add = one FLOP, bias and elementwise ops not counted (fvcore convention), at
    batch 1 and a 16x16 input:
    conv1 3x3, 4 -> 8, 16x16 out: 16·16·8 outputs x 4·9 = 73728;
    conv2 1x1 stride 2, 8 -> 2, 8x8 out: 8·8·2 x 8 = 1024;
    attention over 64 tokens of 2 dims: q·kᵀ 64·64·2 + attention·v 64·64·2 = 16384;
    baddbmm (1, 64, 2) @ (1, 2, 64): 64·2·64 = 8192; total 99328."""
    gflops, uncounted = bench.measure_flops(ConvNet(), 16, 'cpu')
    assert 16 * 16 * 8 * 4 * 9 + 8 * 8 * 2 * 8 + 2 * 64 * 64 * 2 + 64 * 2 * 64 == 99328
    assert gflops == pytest.approx(99328 / 1e9, rel=1e-12)
    assert uncounted == ''  # relu, flatten, transpose and zeros have no cost by convention


SWIN_TINY = 'configs/pmtseg/pmtseg_swin-d32-tiny_1xb4-1000it_synthetic-depth-128x128.py'


def test_swin_config_side_by_side_with_the_resnet_one(tmp_path):
    """The CPU-sized Swin PMTSeg next to the ResNet-18 one: parameters, FLOPs, latency."""
    out = tmp_path / 'rows.json'
    start = time.perf_counter()
    bench.main([PMTSEG, SWIN_TINY, '--device', 'cpu', '--threads', '1', '--size', '64',
                '--skip', 'tasks,train', '--repeats', '1', '--warmup', '0', '--out', str(out)])
    elapsed = time.perf_counter() - start
    resnet, swin = json.loads(out.read_text())['rows']
    assert swin['name'] == osp.splitext(osp.basename(SWIN_TINY))[0]
    assert resnet['params_m'] == pytest.approx(26.884071) and swin['params_m'] == pytest.approx(
        6.930597)  # the metafile's counts
    assert swin['params_ratio'] == pytest.approx(6.930597 / 26.884071)
    for spec, row in ((PMTSEG, resnet), (SWIN_TINY, swin)):
        model = bench.build_model(bench.load_config(spec)[1], 'cpu')
        assert row['gflops'] == pytest.approx(bench.measure_flops(model, 64, 'cpu')[0], rel=1e-9)
        assert isinstance(row['latency_all_s'], float)
        check_timing_and_memory(row, elapsed)
    assert swin['gflops'] < resnet['gflops']  # 32-d Swin stages against 64-512-d ResNet-18 ones
