"""Loading of co-registered modalities into one channel-stacked image."""
import io
from typing import Dict, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import tifffile
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine.fileio import get

TIFF_SUFFIXES = ('.tif', '.tiff')
_OPTION_KEYS = {'bands', 'channels', 'nan_value'}


def read_raster(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """Read an image file as an (H, W, C) array in its stored dtype.

    TIFF/GeoTIFF (any band count, 8/16-bit, float, interleaved or planar) go through
    ``tifffile``; other formats through mmcv/cv2 unchanged, so 8-bit colour PNG/JPG come out in
    BGR order as everywhere in OpenMMLab and 16-bit PNG keep their depth.
    """
    try:
        data = get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'image file not found: {path}') from None
    except OSError as err:  # a directory, no permission ...
        raise ValueError(f'cannot read image file {path}: {err}') from None
    try:
        if path.lower().endswith(TIFF_SUFFIXES):
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                series = tif.series[0]
                array = series.asarray()
                axes = series.axes
            if array.ndim == 3 and axes[-1] != 'S':  # planar: bands first
                array = np.moveaxis(array, 0, -1)
        else:
            array = mmcv.imfrombytes(data, flag='unchanged', backend='cv2')
    except Exception as err:  # noqa: BLE001  (any decoder error -> one clear message)
        raise ValueError(f'cannot read image file {path}: {err}') from err
    if array is None or array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(f'cannot read image file {path}: not a 2D raster '
                         f'(decoded shape {None if array is None else array.shape})')
    return array[..., None] if array.ndim == 2 else array


@TRANSFORMS.register_module()
class LoadMultiModalImages(BaseTransform):
    """Load every modality of a sample and stack them along channels into ``img``.

    Required keys: ``modality_paths`` (dict name -> path, from
    :class:`MultiModalCocoPanopticDataset`). Added keys: ``img`` (H, W, ΣC) float32,
    ``img_shape``, ``ori_shape``, ``modalities`` (names), ``modality_channels`` (channels per
    modality). Because all modalities live in one array, every stock geometric transform moves
    them (and the labels) with one random draw.

    Args:
        modalities (list[str] | dict[str, dict]): Modalities in channel order, optionally with
            per-modality options: ``bands`` (0-indexed band indices to keep, in that order),
            ``channels`` (expected channel count after band selection; a mismatch raises),
            ``nan_value`` (replacement for NaN pixels; by default NaN raises).
        to_float32 (bool): Convert the stack to float32. Defaults to True.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 modalities: Union[Sequence[str], Dict[str, dict]],
                 to_float32: bool = True,
                 backend_args: Optional[dict] = None) -> None:
        if isinstance(modalities, str) or not modalities:
            raise ValueError('LoadMultiModalImages: `modalities` must be a non-empty list of names or '
                             f'dict name -> options, got {modalities!r}')
        if not isinstance(modalities, dict):
            modalities = {name: {} for name in modalities}
        for name, opts in modalities.items():
            unknown = set(opts) - _OPTION_KEYS
            if unknown:
                raise ValueError(f'LoadMultiModalImages: `modalities.{name}` has unknown options '
                                 f'{sorted(unknown)}; allowed: {sorted(_OPTION_KEYS)}')
        self.modalities: Dict[str, dict] = {k: dict(v) for k, v in modalities.items()}
        self.to_float32 = to_float32
        self.backend_args = backend_args

    def _load_one(self, name: str, path: str) -> np.ndarray:
        opts = self.modalities[name]
        try:
            array = read_raster(path, self.backend_args)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"LoadMultiModalImages: file of modality '{name}' not found: {path}") from None
        except ValueError as err:
            raise ValueError(f"LoadMultiModalImages: modality '{name}': {err}") from None
        bands = opts.get('bands')
        if bands is not None:
            bad = [b for b in bands if not -array.shape[2] <= b < array.shape[2]]
            if bad:
                raise IndexError(
                    f"LoadMultiModalImages: `modalities.{name}.bands` = {list(bands)} selects band(s) "
                    f'{bad} but {path} has {array.shape[2]} band(s) (indices are 0-based)')
            array = array[..., list(bands)]
        expected = opts.get('channels')
        if expected is not None and array.shape[2] != expected:
            raise ValueError(
                f"LoadMultiModalImages: `modalities.{name}.channels` expects {expected} channel(s) "
                f'but {path} gives {array.shape[2]}' + (' after band selection' if bands else ''))
        if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
            if opts.get('nan_value') is None:
                raise ValueError(
                    f"LoadMultiModalImages: modality '{name}' file {path} contains NaN pixels; set "
                    f'`modalities.{name}.nan_value` to the value that should replace them')
            array = np.nan_to_num(array, nan=float(opts['nan_value']))
        return array

    def transform(self, results: dict) -> dict:
        paths = results.get('modality_paths')
        if not isinstance(paths, dict):
            raise KeyError('LoadMultiModalImages needs `modality_paths` (dict name -> file) in the '
                           'sample; use MultiModalCocoPanopticDataset or set it yourself')
        missing = [name for name in self.modalities if name not in paths]
        if missing:
            raise KeyError(f'LoadMultiModalImages: sample {results.get("img_path")} has no path for '
                           f'modalities {missing}; it has {list(paths)}')
        arrays: List[np.ndarray] = []
        first: Optional[Tuple[str, Tuple[int, int]]] = None
        for name in self.modalities:
            array = self._load_one(name, paths[name])
            if first is None:
                first = (paths[name], array.shape[:2])
            elif array.shape[:2] != first[1]:
                raise ValueError(
                    f'LoadMultiModalImages: modalities differ in size: {first[0]} is '
                    f'{first[1][0]}x{first[1][1]} (HxW) but {paths[name]} is '
                    f'{array.shape[0]}x{array.shape[1]}; co-registered modalities must share H x W')
            arrays.append(array.astype(np.float32) if self.to_float32 else array)
        img = np.concatenate(arrays, axis=2)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['modalities'] = tuple(self.modalities)
        results['modality_channels'] = tuple(a.shape[2] for a in arrays)
        results.setdefault('img_path', paths[next(iter(self.modalities))])
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(modalities={self.modalities}, '
                f'to_float32={self.to_float32}, backend_args={self.backend_args})')


def modality_slices(results: dict) -> Dict[str, slice]:
    """Channel slice of each modality in ``results['img']``."""
    if 'modalities' not in results or 'modality_channels' not in results:
        raise KeyError('no `modalities`/`modality_channels` in the sample: put '
                       'LoadMultiModalImages first in the pipeline')
    bounds = np.cumsum((0, ) + tuple(results['modality_channels']))
    return {
        name: slice(int(start), int(stop))
        for name, start, stop in zip(results['modalities'], bounds[:-1], bounds[1:])
    }


__all__ = ['LoadMultiModalImages', 'read_raster', 'modality_slices']
