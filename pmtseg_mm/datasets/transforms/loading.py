"""Loading of co-registered modalities into one channel-stacked image.

Every file is checked as it is read (see docs/reliability.md): size across modalities, band
count, non-finite pixels (NaN, ±Inf), the expected dtype / value range of each modality and, for
GeoTIFFs, that all modalities of a sample share CRS, geotransform and size.
"""
import io
from typing import Dict, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import tifffile
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine.fileio import get

from pmtseg_mm.structures import InvalidDataError, ModalityLayout, transforms_match

TIFF_SUFFIXES = ('.tif', '.tiff')
# GeoTIFF tags (OGC GeoTIFF 1.1): pixel scale, tie points, 4x4 model transformation, geokeys
_PIXEL_SCALE, _TIEPOINT, _TRANSFORMATION, _GEOKEYS, _GEODOUBLES = 33550, 33922, 34264, 34735, 34736
_RASTER_TYPE_KEY, _PIXEL_IS_POINT = 1025, 2
_VERTICAL_KEYS = range(4096, 4100)  # a vertical CRS (heights) may differ between modalities


class GeoRef:
    """Georeferencing of a GeoTIFF: CRS geokeys, affine geotransform (GDAL order) and size."""

    def __init__(self, crs: tuple, transform: Tuple[float, ...], size: Tuple[int, int]) -> None:
        self.crs = crs
        self.transform = transform
        self.size = size

    def matches(self, other: 'GeoRef') -> bool:
        """Same CRS and size, and geotransforms equal up to 1e-3 pixel (float round-off)."""
        return (self.crs == other.crs and self.size == other.size
                and transforms_match(self.transform, other.transform))

    def describe(self) -> str:
        crs = ', '.join(f'{k}={v}' for k, v in self.crs) or 'no CRS keys'
        transform = ', '.join(f'{v:.6g}' for v in self.transform)
        return f'CRS ({crs}), geotransform ({transform}), size {self.size[0]}x{self.size[1]}'


def _geokey_value(key: int, location: int, count: int, offset: int, doubles: tuple):
    if location == 0:
        return offset
    if location == _GEODOUBLES:
        return tuple(doubles[offset:offset + count])
    return None  # ASCII citations do not define the CRS


def read_georef(tif: tifffile.TiffFile) -> Optional[GeoRef]:
    """The georeferencing of a TIFF's first page, or None if it has none.

    Uses the GeoTIFF tags only (ModelTransformation, or ModelPixelScale + ModelTiepoint, and
    GeoKeyDirectory); PixelIsPoint rasters are shifted half a pixel to the PixelIsArea
    convention so both conventions compare equal.
    """
    page = tif.pages[0]
    tags = page.tags

    def value(code: int):
        tag = tags.get(code)
        return None if tag is None else tag.value

    scale, tiepoint, matrix = value(_PIXEL_SCALE), value(_TIEPOINT), value(_TRANSFORMATION)
    if matrix is not None and len(matrix) >= 8:
        a, b, _, c, d, e, _, f = (float(v) for v in matrix[:8])
        transform = (c, a, b, f, d, e)
    elif scale is not None and tiepoint is not None and len(tiepoint) >= 6:
        i, j, _, x, y, _ = (float(v) for v in tiepoint[:6])
        sx, sy = float(scale[0]), float(scale[1])
        transform = (x - i * sx, sx, 0.0, y + j * sy, 0.0, -sy)
    else:
        return None
    keys = value(_GEOKEYS)
    doubles = tuple(value(_GEODOUBLES) or ())
    crs = []
    raster_type = None
    if keys is not None and len(keys) >= 4:
        for k in range(4, 4 + 4 * int(keys[3]), 4):
            key, location, count, offset = (int(v) for v in keys[k:k + 4])
            entry = _geokey_value(key, location, count, offset, doubles)
            if key == _RASTER_TYPE_KEY:
                raster_type = entry
            elif key not in _VERTICAL_KEYS and entry is not None:
                crs.append((key, entry))
    if raster_type == _PIXEL_IS_POINT:
        c, a, b, f, d, e = transform
        transform = (c - (a + b) / 2, a, b, f - (d + e) / 2, d, e)
    return GeoRef(tuple(sorted(crs)), transform, (int(page.shape[0]), int(page.shape[1])))


def _decode(path: str, data: bytes, with_georef: bool) -> Tuple[np.ndarray, Optional[GeoRef]]:
    georef = None
    if path.lower().endswith(TIFF_SUFFIXES):
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            series = tif.series[0]
            array = series.asarray()
            axes = series.axes
            if with_georef:
                georef = read_georef(tif)
        if array.ndim == 3 and axes[-1] != 'S':  # planar: bands first
            array = np.moveaxis(array, 0, -1)
    else:
        array = mmcv.imfrombytes(data, flag='unchanged', backend='cv2')
    return array, georef


def read_raster_georef(path: str,
                       backend_args: Optional[dict] = None
                       ) -> Tuple[np.ndarray, Optional[GeoRef]]:
    """:func:`read_raster` plus the file's GeoTIFF georeferencing (None if it has none)."""
    try:
        data = get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'image file not found: {path}') from None
    except OSError as err:  # a directory, no permission ...
        raise ValueError(f'cannot read image file {path}: {err}') from None
    try:
        array, georef = _decode(path, data, with_georef=True)
    except Exception as err:  # noqa: BLE001  (any decoder error -> one clear message)
        raise ValueError(f'cannot read image file {path}: {err}') from err
    if array is None or array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(f'cannot read image file {path}: not a 2D raster '
                         f'(decoded shape {None if array is None else array.shape})')
    return (array[..., None] if array.ndim == 2 else array), georef


def read_raster(path: str, backend_args: Optional[dict] = None) -> np.ndarray:
    """Read an image file as an (H, W, C) array in its stored dtype.

    TIFF/GeoTIFF (any band count, 8/16-bit, float, interleaved or planar) go through
    ``tifffile``; other formats through mmcv/cv2 unchanged, so 8-bit colour PNG/JPG come out in
    BGR order as everywhere in OpenMMLab and 16-bit PNG keep their depth.
    """
    return read_raster_georef(path, backend_args)[0]


@TRANSFORMS.register_module()
class LoadMultiModalImages(BaseTransform):
    """Load every modality of a sample and stack them along channels into ``img``.

    Required keys: ``modality_paths`` (dict name -> path, from
    :class:`MultiModalCocoPanopticDataset`). Added keys: ``img`` (H, W, ΣC) float32,
    ``img_shape``, ``ori_shape``, ``modalities`` (names), ``modality_channels`` (channels per
    modality). Because all modalities live in one array, every stock geometric transform moves
    them (and the labels) with one random draw.

    Every file is checked: a problem raises one error naming the modality and the file
    (:class:`InvalidDataError`, a ``ValueError``, for bad content).

    Args:
        modalities (list[str] | dict[str, dict]): Modalities in channel order, optionally with
            per-modality options:

            - ``bands``: 0-indexed band indices to keep, in that order;
            - ``channels``: expected channel count after band selection (a mismatch raises);
            - ``nan_value``: replacement for NaN pixels (by default NaN raises);
            - ``inf_value``: replacement for ±Inf pixels, a number or a (for -Inf, for +Inf)
              pair (by default ±Inf raises);
            - ``dtype``: expected stored dtype name(s), e.g. ``'uint8'`` for 8-bit optical;
            - ``value_range``: ``(low, high)`` every pixel must lie in (after the replacements);
            - ``on_mismatch``: ``'error'`` (default) or ``'warn'`` (warn once per modality,
              naming the file) when ``dtype``/``value_range`` do not match;
            - ``rescale``: ``(low, high)``: stored values mapped linearly to 0..255 (clipped)
              before the range check, e.g. 16-bit data under 8-bit statistics;
            - ``nodata``: the value of pixels without data (whole-scene inference also reads a
              GeoTIFF's own). A pixel is valid only where no modality is nodata; the checks
              look at valid pixels, nodata pixels are set to 0 in every modality and their
              mask is ``results['nodata_mask']``, which
              :class:`VoidNodata` (after the annotations are loaded) turns into void targets.
        order (Sequence[str], optional): The channel order of the modalities when
            ``modalities`` is a dict: mmengine sorts dict keys when it dumps a config (the copy
            in ``work_dir``), a list keeps its order. The shipped dataset bases set it. Defaults
            to the dict's own order.
        to_float32 (bool): Convert the stack to float32. Defaults to True.
        check_georef (bool): Refuse samples whose GeoTIFF modalities disagree in CRS,
            geotransform or size. Files without georeferencing (PNG, plain TIFF) are not
            compared. Defaults to True.
        backend_args (dict, optional): mmengine file backend arguments.
    """

    def __init__(self,
                 modalities: Union[Sequence[str], Dict[str, dict]],
                 order: Optional[Sequence[str]] = None,
                 to_float32: bool = True,
                 check_georef: bool = True,
                 backend_args: Optional[dict] = None) -> None:
        if order:
            if not isinstance(modalities, dict) or sorted(order) != sorted(modalities):
                raise ValueError(f'LoadMultiModalImages: `order` {list(order)} must name each of '
                                 f'the `modalities` {list(modalities)} once')
            modalities = {name: modalities[name] for name in order}
        self.layout = ModalityLayout(modalities, prefix='LoadMultiModalImages: ')
        self.modalities: Dict[str, dict] = self.layout.options
        self.to_float32 = to_float32
        self.check_georef = check_georef
        self.backend_args = backend_args

    def _load_one(self, name: str, path: str) -> Tuple[np.ndarray, Optional[GeoRef]]:
        try:
            array, georef = read_raster_georef(path, self.backend_args)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"LoadMultiModalImages: file of modality '{name}' not found: {path}") from None
        except ValueError as err:
            raise InvalidDataError(f"LoadMultiModalImages: modality '{name}': {err}",
                                   [path]) from None
        return self.layout.select_bands(name, array, path, [path]), georef

    def transform(self, results: dict) -> dict:
        paths = results.get('modality_paths')
        if not isinstance(paths, dict):
            raise KeyError('LoadMultiModalImages needs `modality_paths` (dict name -> file) in the '
                           'sample; use MultiModalCocoPanopticDataset or set it yourself')
        missing = [name for name in self.modalities if name not in paths]
        if missing:
            raise KeyError(f'LoadMultiModalImages: sample {results.get("img_path")} has no path for '
                           f'modalities {missing}; it has {list(paths)}')
        arrays: Dict[str, np.ndarray] = {}
        first: Optional[Tuple[str, Tuple[int, int]]] = None
        geo_first: Optional[Tuple[str, GeoRef]] = None
        for name in self.modalities:
            array, georef = self._load_one(name, paths[name])
            if first is None:
                first = (paths[name], array.shape[:2])
            elif array.shape[:2] != first[1]:
                raise InvalidDataError(
                    f'LoadMultiModalImages: modalities differ in size: {first[0]} is '
                    f'{first[1][0]}x{first[1][1]} (HxW) but {paths[name]} is '
                    f'{array.shape[0]}x{array.shape[1]}; co-registered modalities must share H x W',
                    [first[0], paths[name]])
            if self.check_georef and georef is not None:
                if geo_first is None:
                    geo_first = (paths[name], georef)
                elif not georef.matches(geo_first[1]):
                    raise InvalidDataError(
                        'LoadMultiModalImages: modalities disagree in georeferencing: '
                        f'{geo_first[0]} has {geo_first[1].describe()} but {paths[name]} has '
                        f'{georef.describe()}; co-registered modalities must share CRS, '
                        'geotransform and size (resample them onto one grid, or set '
                        '`check_georef=False` if the tags are wrong)',
                        [geo_first[0], paths[name]])
            arrays[name] = array
        nodata = {n: o['nodata'] for n, o in self.modalities.items() if o.get('nodata') is not None}
        if nodata:  # checks on valid pixels only; nodata pixels filled, their targets void
            arrays, valid = self.layout.check_valid(
                arrays, nodata, {n: f'file {paths[n]}' for n in arrays},
                {n: [paths[n]] for n in arrays})
            results['nodata_mask'] = ~valid
        else:
            arrays = {n: self.layout.check_pixels(n, a, f'file {paths[n]}', [paths[n]])
                      for n, a in arrays.items()}
        arrays = [a.astype(np.float32) if self.to_float32 else a for a in arrays.values()]
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
                f'to_float32={self.to_float32}, check_georef={self.check_georef}, '
                f'backend_args={self.backend_args})')


def sample_layout(results: dict) -> ModalityLayout:
    """The :class:`ModalityLayout` of a loaded sample (``modalities``, ``modality_channels``)."""
    if 'modalities' not in results or 'modality_channels' not in results:
        raise KeyError('no `modalities`/`modality_channels` in the sample: put '
                       'LoadMultiModalImages first in the pipeline')
    return ModalityLayout(results['modalities'], results['modality_channels'])


def modality_slices(results: dict) -> Dict[str, slice]:
    """Channel slice of each modality in ``results['img']``."""
    return sample_layout(results).slices


__all__ = [
    'GeoRef', 'InvalidDataError', 'LoadMultiModalImages', 'read_georef', 'read_raster',
    'read_raster_georef', 'modality_slices', 'sample_layout'
]
