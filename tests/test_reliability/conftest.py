"""Fixtures: a tiny synthetic dataset generated through the public CLI."""
import shutil

import pytest
from reliability_helpers import run


@pytest.fixture(scope='session')
def synthetic_root(tmp_path_factory):
    """2 train / 2 val optical + depth images of 64x64 (read-only: copy before corrupting)."""
    out = str(tmp_path_factory.mktemp('synthetic') / 'data')
    run(['tools/dataset_converters/synthetic.py', '--out', out, '--num-train', '2', '--num-val',
         '2', '--size', '64', '--aux', 'depth', '--seed', '0'])
    return out


@pytest.fixture
def dataset_copy(synthetic_root, tmp_path):
    """A writable copy of the synthetic dataset."""
    dst = str(tmp_path / 'data')
    shutil.copytree(synthetic_root, dst)
    return dst
