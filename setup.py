"""Install pmtseg-mm: ``pip install -e .`` (see tools/install.sh for the full stack)."""
import os.path as osp

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


setup(
    name='pmtseg_mm',
    version=get_version(),
    description='PMTSeg (prompt-driven multimodal Transformer for remote-sensing '
    'segmentation) as an OpenMMLab plugin',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'demo', 'tests')),
    include_package_data=True,
    python_requires='>=3.8',
    license='Apache License 2.0',
    install_requires=read_requirements('runtime.txt') + read_requirements('mminstall.txt'),
    extras_require=dict(
        tests=read_requirements('tests.txt'),
        optional=read_requirements('optional.txt'),
    ),
    zip_safe=False,
)
