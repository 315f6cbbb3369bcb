"""pmtseg-mm: PMTSeg for OpenMMLab.

Importing this package registers every component into mmdet's registries, so configs only need
``custom_imports = dict(imports=['pmtseg_mm'], allow_failed_imports=False)``.
"""
from .compat import check_stack
from .version import __version__

# the OpenMMLab line in use ('2023' or 'onedl'); ImportError naming both lines' combinations if none
STACK = check_stack()

from . import datasets, engine, evaluation, models, utils, visualization  # noqa: E402,F401  (registers)
from . import registry, segmentation  # noqa: E402,F401  (the same parts in mmseg's registries)

__all__ = ['STACK', '__version__']
