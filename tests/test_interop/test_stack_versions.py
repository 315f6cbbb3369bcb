"""The two OpenMMLab lines: version checks on the imported modules, one requirements file per line
that agrees with them, setup.py extras that never mix the lines, and checkpoints that load across
numpy 1 and 2 (the fork line's numpy). The fork line itself runs in .ci/run's second environment
(tools/ci/smoke_onedl.py)."""
import io
import json
import os.path as osp
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
from packaging.requirements import Requirement
from packaging.version import Version

import pmtseg_mm
from pmtseg_mm.compat import DISTRIBUTIONS, MODULES, STACKS, imported_versions, match_stack
from pmtseg_mm.utils.checkpoint import safe_torch_load

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TESTED = {
    '2023': dict(mmcv='2.1.0', mmdet='3.3.0', mmengine='0.10.7', mmseg='1.2.2'),
    'onedl': dict(mmcv='2.3.6', mmdet='3.5.1', mmengine='0.10.12', mmseg='1.4.2'),
}


def _requirements(name: str) -> dict:
    """{distribution: Requirement} of one requirements file (``-r`` lines followed)."""
    found = {}
    with open(osp.join(ROOT, 'requirements', name)) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line.startswith('-r '):
                found.update(_requirements(line[3:].strip()))
            elif line:
                req = Requirement(line)
                found[req.name] = req
    return found


@pytest.mark.parametrize('line', sorted(STACKS))
def test_each_line_is_recognised_by_its_tested_versions(line):
    assert match_stack(TESTED[line]) == line


def test_the_installed_stack_is_one_line():
    found = imported_versions()
    assert pmtseg_mm.STACK == match_stack(found)
    assert found == {m: __import__(m).__version__ for m in MODULES}


@pytest.mark.parametrize('found, named', [
    (dict(TESTED['onedl'], mmdet='3.3.0'), 'mmdet 3.3.0'),  # mixed lines
    (dict(TESTED['2023'], mmcv='2.2.0'), 'mmcv 2.2.0'),  # past the 2023 range
    (dict(TESTED['2023'], mmengine='0.10.12'), 'mmengine 0.10.12'),  # fork mmengine, 2023 rest
    (dict(TESTED['onedl'], mmseg=None), 'mmseg not installed'),
    (dict(TESTED['2023'], mmdet='(import refused: MMCV==2.3.6 is used but incompatible)'),
     'mmdet (import refused'),
])
def test_other_combinations_give_one_error_naming_both_lines(found, named):
    with pytest.raises(ImportError) as err:
        match_stack(found)
    text = str(err.value)
    assert named in text
    assert 'onedl-mmcv>=2.3.6,<2.4.0' in text and 'mmcv>=2.0.0rc4,<2.2.0' in text
    assert 'PMTSEG_STACK=onedl bash tools/install.sh' in text and 'docs/install.md' in text


def test_import_refuses_an_mmcv_of_neither_line_in_a_fresh_process():
    """`import pmtseg_mm` with an mmcv of neither line (mmdet 3.3 itself refuses it at import)."""
    code = ('import mmcv; mmcv.__version__ = "2.2.0"\n'
            'try:\n    import pmtseg_mm\nexcept ImportError as e:\n    print("REFUSED", e)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert 'REFUSED pmtseg_mm runs on one of two OpenMMLab lines' in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize('line, file', [('2023', 'mm2023.txt'), ('onedl', 'onedl.txt')])
def test_requirements_file_pins_its_line_within_the_checked_ranges(line, file):
    reqs = _requirements(file)
    for module, (low, high) in STACKS[line].items():
        req = reqs[DISTRIBUTIONS[line][module]]
        assert req.specifier.contains(TESTED[line][module], prereleases=True), (module, req)
        for version in (low, high):  # the pin allows nothing outside the checked range
            allowed = [v for v in req.specifier.filter([version], prereleases=True)]
            assert not allowed or Version(low) <= Version(version) < Version(high), (req, version)
    other = 'onedl' if line == '2023' else '2023'
    assert not set(reqs) & set(DISTRIBUTIONS[other].values()), 'a line file names the other line'


def test_numpy_and_opencv_pins_agree_within_each_line():
    assert _requirements('mm2023.txt')['numpy'].specifier.contains('1.26.4')
    onedl = _requirements('onedl.txt')
    assert not onedl['numpy'].specifier.contains('1.26.4') and onedl['numpy'].specifier.contains(
        '2.3.5')
    # both opencv distributions write cv2/: one release for both on the fork line
    assert str(onedl['opencv-python'].specifier) == str(onedl['opencv-python-headless'].specifier)
    # panopticapi-lite declares numpy<2: on the fork line it is installed with --no-deps
    assert 'panopticapi-lite' in _requirements('mm2023.txt')
    assert 'panopticapi-lite' not in onedl
    assert set(_requirements('onedl_nodeps.txt')) == {'panopticapi-lite'}


def test_setup_extras_keep_the_lines_apart():
    out = subprocess.run(
        [sys.executable, '-c', 'import runpy, setuptools, json\n'
         'seen = {}\nsetuptools.setup = lambda **kw: seen.update(kw)\n'
         'runpy.run_path("setup.py")\n'
         'print(json.dumps([seen["install_requires"], seen["extras_require"]]))'],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    install, extras = json.loads(out.stdout.strip().splitlines()[-1])
    names = lambda reqs: {Requirement(r).name for r in reqs}  # noqa: E731
    mm = set(DISTRIBUTIONS['2023'].values()) | set(DISTRIBUTIONS['onedl'].values())
    assert not names(install) & mm, 'install_requires names an mmcv line'
    assert names(install) & {'numpy', 'opencv-python-headless', 'panopticapi-lite'} == set()
    assert set(DISTRIBUTIONS['2023'].values()) <= names(extras['mm2023'])
    assert set(DISTRIBUTIONS['onedl'].values()) <= names(extras['onedl'])
    assert not names(extras['mm2023']) & set(DISTRIBUTIONS['onedl'].values())
    assert not names(extras['onedl']) & set(DISTRIBUTIONS['2023'].values())


@pytest.mark.parametrize('other', ['numpy.core', 'numpy._core'])
def test_checkpoints_with_numpy_objects_load_whichever_numpy_wrote_them(tmp_path, other):
    """A checkpoint pickles numpy arrays/scalars under numpy 1's ``numpy.core.multiarray`` or
    numpy 2's ``numpy._core.multiarray``; both names load, safely, on the installed numpy."""
    buf = io.BytesIO()
    torch.save({'meta': {'arr': np.arange(3, dtype=np.int64), 'x': np.float64(1.5)}}, buf)
    mine = 'numpy.core' if Version(np.__version__) < Version('2') else 'numpy._core'
    data = buf.getvalue()
    # the pickle inside torch's zip: rename the multiarray module as the other numpy writes it
    src = zipfile.ZipFile(io.BytesIO(data))
    path = tmp_path / 'ckpt.pth'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as dst:
        for item in src.infolist():
            payload = src.read(item.filename)
            if item.filename.endswith('data.pkl'):
                payload = payload.replace(f'{mine}.multiarray'.encode(),
                                          f'{other}.multiarray'.encode())
                assert f'{other}.multiarray'.encode() in payload
            dst.writestr(item, payload)
    loaded = safe_torch_load(str(path))
    assert loaded['meta']['arr'].tolist() == [0, 1, 2]
    assert loaded['meta']['x'] == 1.5 and isinstance(loaded['meta']['x'], np.float64)
