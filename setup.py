"""Install pmtseg-mm: ``pip install -e ".[mm2023]"`` or ``".[onedl]"`` (the OpenMMLab line;
mmcv is built from source on both: tools/install.sh does the whole stack, docs/install.md)."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup


def read_requirements(fname: str) -> list:
    """Read one requirements file (``-r`` lines are not followed)."""
    with open(osp.join(osp.dirname(__file__), 'requirements', fname)) as f:
        return [
            line.strip() for line in f
            if line.strip() and not line.startswith(('#', '-'))
        ]


def get_version() -> str:
    scope: dict = {}
    with open(osp.join('pmtseg_mm', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def add_mim_extension() -> None:
    """Expose tools/, configs/ and model-index.yml as pmtseg_mm/.mim, for
    ``mim train|test pmtseg_mm CONFIG`` and ``mim search pmtseg_mm``.

    Symlinks for editable installs, copies when building a distribution (as mmdet does).
    """
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'build', 'install'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    root = osp.dirname(osp.abspath(__file__))
    mim_path = osp.join(root, 'pmtseg_mm', '.mim')
    os.makedirs(mim_path, exist_ok=True)
    for name in ('tools', 'configs', 'model-index.yml'):
        src, dst = osp.join(root, name), osp.join(mim_path, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_path), dst)
        elif osp.isdir(src):
            shutil.copytree(src, dst)
        else:
            shutil.copyfile(src, dst)


add_mim_extension()
setup(
    name='pmtseg_mm',
    version=get_version(),
    description='PMTSeg (prompt-driven multimodal Transformer for remote-sensing '
    'segmentation) as an OpenMMLab plugin',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'demo', 'tests')),
    include_package_data=True,
    package_data={
        'pmtseg_mm': [
            '.mim/model-index.yml', '.mim/configs/**/*.py', '.mim/configs/**/*.yml',
            '.mim/tools/**/*'
        ]
    },
    python_requires='>=3.8',
    license='Apache License 2.0',
    # the OpenMMLab stack is an extra, one per line, so no install drags in the other line's mmcv
    install_requires=read_requirements('runtime.txt'),
    extras_require={
        'mm2023': read_requirements('mm2023.txt'),
        # panopticapi-lite (declares numpy<2) goes with --no-deps: requirements/onedl_nodeps.txt
        'onedl': read_requirements('onedl.txt'),
        # torch 2.9.1 + torchvision 0.24.1 for the mmpretrain backbones (opt-in: on x86_64 a
        # CUDA build that replaces a CPU torch; requirements/torchvision.txt says why)
        'torchvision': read_requirements('torchvision.txt'),
        'tests': read_requirements('tests.txt'),
        'optional': read_requirements('optional.txt'),
    },
    zip_safe=False,
)
