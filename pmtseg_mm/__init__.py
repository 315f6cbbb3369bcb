"""pmtseg-mm: PMTSeg for OpenMMLab.

Importing this package registers every component into mmdet's registries, so configs only need
``custom_imports = dict(imports=['pmtseg_mm'], allow_failed_imports=False)``.
"""
from importlib.metadata import PackageNotFoundError, version as _dist_version

from packaging.version import Version

from .version import __version__

# (distribution, lowest allowed, first disallowed)
_REQUIRED = (
    ('mmcv', '2.0.0rc4', '2.2.0'),
    ('mmdet', '3.3.0', '3.4.0'),
    ('mmengine', '0.10.4', '1.0.0'),
    ('mmsegmentation', '1.2.0', '1.3.0'),
)


def _check_versions() -> None:
    for dist, low, high in _REQUIRED:
        try:
            found = _dist_version(dist)
        except PackageNotFoundError:
            raise ImportError(
                f'pmtseg_mm needs {dist}>={low},<{high} but it is not installed; '
                f'run `bash tools/install.sh` or `pip install -r requirements/mminstall.txt`.')
        if not Version(low) <= Version(found) < Version(high):
            raise ImportError(f'pmtseg_mm needs {dist}>={low},<{high}, found {dist}=={found}; '
                              f'install a matching version (see requirements/mminstall.txt).')


_check_versions()

from . import datasets, engine, evaluation, models, utils, visualization  # noqa: E402,F401  (registers)
from . import registry, segmentation  # noqa: E402,F401  (the same parts in mmseg's registries)

__all__ = ['__version__']
