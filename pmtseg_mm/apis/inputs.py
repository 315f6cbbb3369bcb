"""Validated loading of one multimodal input (paths or arrays, a modality possibly missing).

Shared by :class:`MultiModalInferencer` and the demos: what the config declares (modalities,
their loading options and channel counts, the preprocessor's mean as fill value for a missing
modality) is read once into a :class:`ModalitySpec`, the config's
:class:`~pmtseg_mm.structures.ModalityLayout` plus its test transforms.
"""
import glob
import os.path as osp
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.datasets.transforms import LoadAnnotations
from mmdet.registry import TRANSFORMS
from mmengine.config import Config, ConfigDict

from pmtseg_mm.datasets.transforms.loading import LoadMultiModalImages, sample_layout
from pmtseg_mm.structures import ModalityLayout, resolve_fill_values

ModalityInput = Union[str, np.ndarray]


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


class ModalitySpec(ModalityLayout):
    """What a config expects as input: its :class:`ModalityLayout` (modalities in stack order
    with the options of its :class:`LoadMultiModalImages`, channels per modality, and the fill
    of a missing modality - the preprocessor's mean, i.e. a normalised 0, as ModalityDropout),
    plus the loader and the test transforms that follow it."""

    def __init__(self, cfg: Config) -> None:
        built = [t if isinstance(t, BaseTransform) else TRANSFORMS.build(t)
                 for t in test_pipeline_cfg(cfg)]
        loaders = [t for t in built if isinstance(t, LoadMultiModalImages)]
        if len(loaders) != 1:
            raise KeyError('the config\'s test pipeline must contain exactly one '
                           f'LoadMultiModalImages, found {len(loaders)}')
        self.loader: LoadMultiModalImages = loaders[0]
        self.transforms = [
            t for t in built if not isinstance(t, (LoadMultiModalImages, LoadAnnotations))]
        options = self.loader.modalities
        pre = cfg.model.get('data_preprocessor') or {}
        channels = pre.get('modality_channels')
        if channels is None:
            channels = [options[n].get('channels') for n in options]
            if any(c is None for c in channels):
                raise KeyError('the config declares neither `model.data_preprocessor.'
                               'modality_channels` nor `channels` for every modality of '
                               'LoadMultiModalImages')
        channels = tuple(int(c) for c in channels)
        if len(channels) != len(options):
            raise ValueError(f'`model.data_preprocessor.modality_channels`={channels} does not '
                             f'match the test pipeline modalities {list(options)}')
        super().__init__(options, channels, resolve_fill_values(
            pre.get('mean'), tuple(options), channels, pre.get('bgr_to_rgb', False),
            owner='model.data_preprocessor.mean'))

    def _check_array(self, name: str, array: np.ndarray) -> np.ndarray:
        if not isinstance(array, np.ndarray) or array.ndim not in (2, 3) or array.size == 0:
            raise ValueError(f"input of modality '{name}' must be an (H, W) or (H, W, C) array, "
                             f'got {getattr(array, "shape", type(array).__name__)}')
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ValueError(f"input array of modality '{name}' has non-numeric dtype "
                             f'{array.dtype}')
        array = self.select_bands(name, array[..., None] if array.ndim == 2 else array,
                                  'the input array')
        return self.check_pixels(name, array, 'input array').astype(np.float32)

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
        missing = self.check_given(tuple(inputs), missing)
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
                to_float32=True, check_georef=self.loader.check_georef,
                backend_args=self.loader.backend_args)
            loaded = loader.transform(dict(modality_paths=dict(paths)))
            arrays.update(sample_layout(loaded).split(loaded['img']))
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
        return self.stack(arrays, missing), arrays, paths

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
