"""Validated loading of one multimodal input (paths or arrays, a modality possibly missing).

Shared by :class:`MultiModalInferencer` and the demos: what the config declares (modalities,
their loading options and channel counts, the preprocessor's mean as fill value for a missing
modality) is read once into a :class:`ModalitySpec`.
"""
import glob
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import Config, ConfigDict

from pmtseg_mm.datasets.transforms.loading import LoadMultiModalImages
from pmtseg_mm.datasets.transforms.modality_dropout import (blank_modalities,
                                                            resolve_fill_values)

ModalityInput = Union[str, np.ndarray]
_LOAD_TYPES = ('LoadMultiModalImages', 'mmdet.LoadMultiModalImages')
_ANNOTATION_LOADERS = ('LoadPanopticAnnotations', 'LoadAnnotations')


def find_config(name: str) -> str:
    """Path of a config given as a path or as a config name (file stem) of this repository's
    ``configs/`` folder, e.g. ``pmtseg_r18-tiny_1xb4-1000it_synthetic-depth-128x128``."""
    if osp.isfile(name):
        return name
    package = osp.dirname(osp.dirname(osp.realpath(__file__)))
    roots = [osp.join(osp.dirname(package), 'configs'), osp.join(package, '.mim', 'configs')]
    stem = osp.splitext(osp.basename(name))[0]
    for root in roots:
        found = sorted(glob.glob(osp.join(root, '**', stem + '.py'), recursive=True))
        if found:
            return found[0]
    raise FileNotFoundError(f'config {name!r} is neither a file nor a config name under '
                            f'{" or ".join(roots)} (give a config path or the file stem of one)')


def test_pipeline_cfg(cfg: Config) -> List[dict]:
    """The test pipeline of a config (``test_dataloader.dataset.pipeline`` or
    ``test_pipeline``), as a list of transform dicts."""
    pipeline = None
    try:
        pipeline = cfg.test_dataloader.dataset.pipeline
    except AttributeError:
        pipeline = cfg.get('test_pipeline')
    if not pipeline:
        raise KeyError('the config has no `test_dataloader.dataset.pipeline` (or `test_pipeline`) '
                       'to take the modalities and test transforms from')
    return [dict(t) for t in pipeline]


class ModalitySpec:
    """What a config expects as input: modality names (stack order), their
    :class:`LoadMultiModalImages` options, channels per modality and the fill values of a
    missing modality (the preprocessor's mean, i.e. a normalised 0 - as ModalityDropout)."""

    def __init__(self, cfg: Config) -> None:
        pipeline = test_pipeline_cfg(cfg)
        loaders = [t for t in pipeline if t.get('type') in _LOAD_TYPES]
        if len(loaders) != 1:
            raise KeyError('the config\'s test pipeline must contain exactly one '
                           f'LoadMultiModalImages, found {len(loaders)}')
        loader = dict(loaders[0])
        loader.pop('type')
        modalities = loader.pop('modalities')
        if not isinstance(modalities, Mapping):
            modalities = {name: {} for name in modalities}
        self.options: Dict[str, dict] = {n: dict(o or {}) for n, o in modalities.items()}
        self.names: Tuple[str, ...] = tuple(self.options)
        self.loader_kwargs = loader
        self.transforms = [t for t in pipeline if t.get('type') not in _LOAD_TYPES
                           and str(t.get('type')).split('.')[-1] not in _ANNOTATION_LOADERS]
        pre = cfg.model.get('data_preprocessor') or {}
        channels = pre.get('modality_channels')
        if channels is None:
            channels = [self.options[n].get('channels') for n in self.names]
            if any(c is None for c in channels):
                raise KeyError('the config declares neither `model.data_preprocessor.'
                               'modality_channels` nor `channels` for every modality of '
                               'LoadMultiModalImages')
        channels = tuple(int(c) for c in channels)
        if len(channels) != len(self.names):
            raise ValueError(f'`model.data_preprocessor.modality_channels`={channels} does not '
                             f'match the test pipeline modalities {list(self.names)}')
        self.channels: Tuple[int, ...] = channels
        self.fill_values = resolve_fill_values(
            pre.get('mean'), self.names, self.channels, pre.get('bgr_to_rgb', False),
            owner='model.data_preprocessor.mean')

    def check_missing(self, missing: Sequence[str]) -> Tuple[str, ...]:
        """Validate a ``missing`` declaration (names of configured modalities, not all)."""
        missing = (missing, ) if isinstance(missing, str) else tuple(missing or ())
        unknown = [m for m in missing if m not in self.names]
        if unknown:
            raise ValueError(f'missing={list(missing)}: {unknown} are not modalities of the config '
                             f'{list(self.names)}')
        if set(missing) >= set(self.names):
            raise ValueError(f'missing={list(missing)} declares every modality missing; at least '
                             'one must be given')
        return missing

    def _check_array(self, name: str, array: np.ndarray) -> np.ndarray:
        if not isinstance(array, np.ndarray) or array.ndim not in (2, 3) or array.size == 0:
            raise ValueError(f"input of modality '{name}' must be an (H, W) or (H, W, C) array, "
                             f'got {getattr(array, "shape", type(array).__name__)}')
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"input array of modality '{name}' has non-numeric dtype "
                             f'{array.dtype}')
        array = array[..., None] if array.ndim == 2 else array
        bands = self.options[name].get('bands')
        if bands is not None:
            if any(not -array.shape[2] <= b < array.shape[2] for b in bands):
                raise ValueError(f"`modalities.{name}.bands`={list(bands)} of the config selects "
                                 f'bands the input array of {array.shape[2]} band(s) lacks')
            array = array[..., list(bands)]
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            opts = self.options[name]
            if opts.get('nan_value') is None or opts.get('inf_value') is None:
                raise ValueError(f"input array of modality '{name}' contains NaN/Inf pixels; set "
                                 f'`modalities.{name}.nan_value`/`inf_value` in the config or '
                                 'clean the array')
            inf = opts['inf_value']
            neg, pos = (inf, inf) if np.isscalar(inf) else tuple(inf)
            array = np.nan_to_num(array, nan=float(opts['nan_value']), posinf=pos, neginf=neg)
        return array.astype(np.float32)

    def load(self, inputs: Mapping[str, ModalityInput],
             missing: Sequence[str] = ()) -> Tuple[np.ndarray, Dict[str, np.ndarray], dict]:
        """Load and check one input.

        Args:
            inputs: ``modality name -> file path or array`` for every configured modality
                not declared missing.
            missing: Modalities declared missing; their channels get :attr:`fill_values`.

        Returns:
            tuple: the stacked float32 image (H, W, ΣC), ``name -> (H, W, C)`` arrays as given
            (for pictures), and ``modality_paths`` of the inputs given as paths.
        """
        if not isinstance(inputs, Mapping):
            raise TypeError('an input must be a dict modality name -> path or array, e.g. '
                            f"dict(optical='a.png', depth='a.tif'), got {type(inputs).__name__}")
        missing = self.check_missing(missing)
        unknown = sorted(set(inputs) - set(self.names))
        if unknown:
            raise ValueError(f'input modalities {unknown} are not in the config (it expects '
                             f'{list(self.names)})')
        both = [m for m in missing if m in inputs]
        if both:
            raise ValueError(f'modalities {both} are declared missing but were also given')
        absent = [n for n in self.names if n not in inputs and n not in missing]
        if absent:
            raise ValueError(f'no input for modalities {absent}; give them or declare them '
                             f'missing (missing={absent!r})')
        paths = {n: v for n, v in inputs.items() if isinstance(v, str)}
        for name, value in inputs.items():
            if not isinstance(value, (str, np.ndarray)):
                raise TypeError(f"input of modality '{name}' must be a file path or a numpy "
                                f'array, got {type(value).__name__}')
            if isinstance(value, str) and not osp.isfile(value):
                raise FileNotFoundError(f"input file of modality '{name}' not found: {value}")
        arrays: Dict[str, np.ndarray] = {}
        if paths:
            loader = LoadMultiModalImages(
                modalities={n: self.options[n] for n in self.names if n in paths},
                **self.loader_kwargs)
            loaded = loader.transform(dict(modality_paths=dict(paths)))
            start = 0
            for name, c in zip(loaded['modalities'], loaded['modality_channels']):
                arrays[name] = loaded['img'][..., start:start + c].astype(np.float32)
                start += c
        for name, value in inputs.items():
            if isinstance(value, np.ndarray):
                arrays[name] = self._check_array(name, value)
        first = next(n for n in self.names if n in arrays)
        size = arrays[first].shape[:2]

        def where(name: str) -> str:
            return paths.get(name, 'array')

        for name, array in arrays.items():
            if array.shape[:2] != size:
                raise ValueError(f"modalities differ in size: '{first}' ({where(first)}) is "
                                 f"{size[0]}x{size[1]} (HxW) but '{name}' ({where(name)}) is "
                                 f'{array.shape[0]}x{array.shape[1]}')
            expected = self.channels[self.names.index(name)]
            if array.shape[2] != expected:
                raise ValueError(f"modality '{name}' ({where(name)}) has {array.shape[2]} "
                                 f'channel(s) but the config expects {expected} '
                                 '(`model.data_preprocessor.modality_channels`)')
        img = np.zeros(size + (sum(self.channels), ), np.float32)
        start = 0
        for name, c in zip(self.names, self.channels):
            if name in arrays:
                img[..., start:start + c] = arrays[name]
            start += c
        blank_modalities(img, self.names, self.channels, missing, self.fill_values)
        return img, arrays, paths

    def results(self, img: np.ndarray, paths: Dict[str, str], index: int,
                missing: Sequence[str] = ()) -> dict:
        """The sample dict :class:`LoadMultiModalImages` would produce, for the rest of the
        test pipeline."""
        first_path = next((paths[n] for n in self.names if n in paths), f'input_{index}.png')
        return dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
                    modalities=self.names, modality_channels=self.channels, img_id=index,
                    img_path=first_path, modality_paths=dict(paths),
                    missing_modalities=tuple(missing))


def as_config(model: Union[str, Config, ConfigDict, dict]) -> Config:
    """A Config from a path, a config name or a config object."""
    if isinstance(model, str):
        return Config.fromfile(find_config(model))
    if isinstance(model, Config):
        return model
    if isinstance(model, dict):
        return Config(dict(model))
    raise TypeError(f'model must be a config path/name or a Config, got {type(model).__name__}')


def optional_list(value: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """None/str/sequence -> tuple of strings."""
    if value is None:
        return ()
    return (value, ) if isinstance(value, str) else tuple(value)


def parse_modality_args(items: Sequence[str]) -> Dict[str, str]:
    """Command-line ``MODALITY=PATH`` items -> ``{modality: path}`` (one clear error otherwise)."""
    inputs: Dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition('=')
        if not sep or not name or not path:
            raise ValueError(f'input {item!r} must be MODALITY=PATH, e.g. optical=a.png')
        if name in inputs:
            raise ValueError(f'modality {name!r} is given twice')
        inputs[name] = path
    return inputs
