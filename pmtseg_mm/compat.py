"""The two OpenMMLab lines pmtseg_mm runs on, and the one place their differences are handled.

* ``2023``: the upstream releases (mmcv 2.1, mmdet 3.3, mmsegmentation 1.2, mmengine 0.10.7,
  mmpretrain 1.2; numpy < 2), the default of ``tools/install.sh``.
* ``onedl``: the maintained fork line (distributions ``onedl-mmcv`` 2.3, ``onedl-mmdetection`` 3.5,
  ``onedl-mmsegmentation`` 1.4, ``onedl-mmengine`` 0.10.12, ``onedl-mmpretrain`` 1.3; numpy 2),
  installed by ``PMTSEG_STACK=onedl bash tools/install.sh``. Same import names.

The versions are read from the imported modules (``mmcv.__version__``, ...), not from distribution
names, so both lines are recognised. Differences between the lines met by the package:

* numpy 2 moved ``numpy.core`` to ``numpy._core`` (checkpoints pickle ``_reconstruct`` and
  ``scalar`` under the module they came from): :func:`numpy_pickle_globals`, used by the
  checkpoint allow-list (``pmtseg_mm/utils/checkpoint.py``).
* mmengine resolves ``mmseg::`` config bases through the distribution name ``mmsegmentation``,
  which the fork installs as ``onedl-mmsegmentation``: :func:`resolve_config_scopes`.
"""
import importlib
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
from packaging.version import Version

# import name -> (lowest allowed, first disallowed); the tested versions are in requirements/
STACKS: Dict[str, Dict[str, Tuple[str, str]]] = {
    '2023': {
        'mmcv': ('2.0.0rc4', '2.2.0'),
        'mmdet': ('3.3.0', '3.4.0'),
        'mmengine': ('0.10.4', '0.10.8'),
        'mmseg': ('1.2.0', '1.3.0'),
    },
    'onedl': {
        'mmcv': ('2.3.6', '2.4.0'),
        'mmdet': ('3.5.1', '3.6.0'),
        'mmengine': ('0.10.12', '0.11.0'),
        'mmseg': ('1.4.2', '1.5.0'),
    },
}
# distribution names of each line (what pip installs), for the error message
DISTRIBUTIONS: Dict[str, Dict[str, str]] = {
    '2023': dict(mmcv='mmcv', mmdet='mmdet', mmengine='mmengine', mmseg='mmsegmentation'),
    'onedl': dict(mmcv='onedl-mmcv', mmdet='onedl-mmdetection', mmengine='onedl-mmengine',
                  mmseg='onedl-mmsegmentation'),
}
INSTALL: Dict[str, str] = {
    '2023': 'bash tools/install.sh (the default), or pip install -e ".[mm2023]"',
    'onedl': 'PMTSEG_STACK=onedl bash tools/install.sh, or pip install -e ".[onedl]"',
}
MODULES = ('mmengine', 'mmcv', 'mmdet', 'mmseg')  # import order: mmdet/mmseg check mmcv at import


def _in_range(found: Optional[str], low: str, high: str) -> bool:
    try:
        return found is not None and Version(low) <= Version(found) < Version(high)
    except ValueError:  # not a version: an import failure's text
        return False


def match_stack(found: Mapping[str, Optional[str]]) -> str:
    """The line (a key of :data:`STACKS`) whose ranges hold every version in ``found``.

    ``found`` maps each import name of :data:`MODULES` to its ``__version__``, None when the module
    is not installed, or the text of the error its import raised. Raises ImportError naming the
    versions found and the supported combinations when no line holds them all.
    """
    for name, ranges in STACKS.items():
        if all(_in_range(found.get(module), *ranges[module]) for module in MODULES):
            return name
    seen = ', '.join(f'{module} {found.get(module) or "not installed"}' for module in MODULES)
    lines = []
    for name, ranges in STACKS.items():
        pins = ', '.join(f'{DISTRIBUTIONS[name][module]}>={low},<{high}'
                         for module, (low, high) in ranges.items())
        lines.append(f'  {name}: {pins}; install: {INSTALL[name]}')
    raise ImportError(
        'pmtseg_mm runs on one of two OpenMMLab lines, and the installed packages match neither '
        f'(found {seen}). Supported combinations (docs/install.md):\n' + '\n'.join(lines))


def imported_versions() -> Dict[str, Optional[str]]:
    """``__version__`` of each module of :data:`MODULES`, importing them in order (None: not
    installed; an import that fails with an assertion, as mmdet 3.3 / mmseg 1.2 do on an mmcv
    outside their range, gives that assertion's text)."""
    found: Dict[str, Optional[str]] = {}
    for module in MODULES:
        try:
            found[module] = importlib.import_module(module).__version__
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            found[module] = None
        except AssertionError as err:
            found[module] = f'(import refused: {err})'
    return found


_STACK: Optional[str] = None


def check_stack() -> str:
    """Import the OpenMMLab modules, return the line they form (ImportError if none) and apply
    the adaptations it needs (:func:`resolve_config_scopes`). Idempotent."""
    global _STACK
    if _STACK is None:
        _STACK = match_stack(imported_versions())
        resolve_config_scopes()
    return _STACK


def resolve_config_scopes() -> None:
    """Let ``mmseg::``-style config bases resolve whatever distribution provides the module.

    mmengine maps a config scope to a distribution name (``mmseg`` -> ``mmsegmentation``) and
    looks the package up by it; the fork line installs ``onedl-mmsegmentation``, so ``mmseg::``
    bases fail with "mmsegmentation is not installed". A scope whose distribution is missing
    while its module is importable is mapped to the module name, which mmengine's
    ``is_installed`` and ``get_installed_path`` find from the module itself (the configs ship in
    ``<module>/.mim``). Nothing changes on the 2023 line.
    """
    from mmengine.config.utils import MODULE2PACKAGE
    from mmengine.utils import is_installed
    for module, package in MODULE2PACKAGE.items():
        if module != package and not is_installed(package) and is_installed(module):
            MODULE2PACKAGE[module] = module


def numpy_pickle_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """numpy's ``_reconstruct`` and ``scalar`` for torch's ``add_safe_globals``, under both names.

    numpy < 2 pickles them as ``numpy.core.multiarray.*``, numpy 2 as ``numpy._core.multiarray.*``
    (``numpy.core`` is only a deprecated alias there). A checkpoint written on one line names the
    other line's module, so each function is also allow-listed under the other name (torch's
    ``(object, "module.name")`` form) and loads as the installed numpy's function.
    """
    core = 'numpy.core' if Version(np.__version__) < Version('2') else 'numpy._core'
    multiarray = importlib.import_module(f'{core}.multiarray')
    entries: List[Union[Callable, Tuple[Callable, str]]] = []
    for func in (multiarray._reconstruct, multiarray.scalar):
        entries.append(func)
        entries += [(func, f'{name}.multiarray.{func.__name__}')
                    for name in ('numpy.core', 'numpy._core') if name != core]
    return entries
