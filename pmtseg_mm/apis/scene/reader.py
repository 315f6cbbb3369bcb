"""Co-registered modality rasters of one scene, checked and read window by window."""
import os.path as osp
from contextlib import ExitStack
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np

from pmtseg_mm.structures import transforms_match
from ..inputs import ModalitySpec, optional_list

try:  # rasterio (GDAL) is a runtime requirement; imported lazily so the package imports without
    import rasterio
    from rasterio.vrt import WarpedVRT
    from rasterio.windows import Window
except ImportError:  # pragma: no cover
    rasterio = None


def _need_rasterio() -> None:
    if rasterio is None:
        raise ImportError('whole-scene inference needs rasterio: pip install "rasterio>=1.4,<1.5"')


def _describe(ds) -> str:
    crs = ds.crs.to_string() if ds.crs else 'no CRS'
    t = ds.transform
    return (f'CRS {crs}, transform (x0={t.c:.6g}, dx={t.a:.6g}, rx={t.b:.6g}, y0={t.f:.6g}, '
            f'ry={t.d:.6g}, dy={t.e:.6g}), size {ds.width}x{ds.height} (WxH)')


def _same_grid(a, b) -> bool:
    if a.width != b.width or a.height != b.height or (a.crs is None) != (b.crs is None):
        return False
    if a.crs is not None and a.crs != b.crs:
        return False
    return transforms_match(a.transform.to_gdal(), b.transform.to_gdal())


class SceneReader:
    """Co-registered modality rasters of one scene, read window by window.

    The first given modality is the reference grid. Every other one must share its CRS,
    geotransform and size (a clear error names both files otherwise) unless ``resample`` is
    set, in which case it is reprojected onto the reference grid on the fly (bilinear,
    GDAL's WarpedVRT, which leaves the source's nodata pixels out of the interpolation).
    Modalities in ``missing`` are filled as in training (ModalityDropout). Each modality's
    nodata value is ``nodata[name]``, else the config's ``modalities.<name>.nodata``, else the
    raster's own.
    """

    def __init__(self, paths: Mapping[str, str], spec: ModalitySpec,
                 missing: Sequence[str] = (), resample: bool = False,
                 nodata: Optional[Mapping[str, float]] = None) -> None:
        _need_rasterio()
        self.spec = spec
        unknown = sorted(set(nodata or {}) - set(paths))
        if unknown:
            raise ValueError(f'nodata values given for {unknown}, which are not among the scene '
                             f'rasters {list(paths)}')
        self.missing = spec.check_given(tuple(paths), optional_list(missing), what='raster')
        for name, path in paths.items():
            if not osp.isfile(path):
                raise FileNotFoundError(f"raster of modality '{name}' not found: {path}")
        self.paths = {n: paths[n] for n in spec.names if n in paths}
        self._stack = ExitStack()
        self.datasets = {}
        try:
            for name, path in self.paths.items():
                try:
                    self.datasets[name] = self._stack.enter_context(rasterio.open(path))
                except rasterio.errors.RasterioIOError as err:
                    raise ValueError(f"cannot read raster of modality '{name}' {path}: {err}") \
                        from None
            self.nodata = {name: float(nodata[name]) if name in (nodata or {}) else
                           spec.nodata_value(name, ds.nodata)
                           for name, ds in self.datasets.items()}
            self._check_grids(resample)
            self._check_bands()
        except BaseException:
            self._stack.close()
            raise

    def _check_grids(self, resample: bool) -> None:
        names = list(self.datasets)
        self.reference = names[0]
        ref = self.datasets[self.reference]
        for name in names[1:]:
            ds = self.datasets[name]
            if _same_grid(ref, ds):
                continue
            if not resample:
                raise ValueError(
                    'scene modalities disagree in georeferencing: '
                    f"'{self.reference}' {self.paths[self.reference]} has {_describe(ref)} but "
                    f"'{name}' {self.paths[name]} has {_describe(ds)}; co-registered modalities "
                    'must share CRS, geotransform and size (resample them onto one grid, or '
                    f"pass resample=True / --resample to reproject '{name}' onto the "
                    f"'{self.reference}' grid)")
            if ref.crs is None or ds.crs is None:
                raise ValueError(f"cannot resample '{name}' {self.paths[name]} onto "
                                 f"{self.paths[self.reference]}: both need a CRS to be "
                                 'reprojected')
            self.datasets[name] = self._stack.enter_context(WarpedVRT(
                ds, crs=ref.crs, transform=ref.transform, width=ref.width, height=ref.height,
                resampling=rasterio.enums.Resampling.bilinear,
                **({} if self.nodata[name] is None else
                   dict(src_nodata=self.nodata[name], nodata=self.nodata[name]))))
        self.height, self.width = ref.height, ref.width
        self.crs, self.transform = ref.crs, ref.transform

    def _check_bands(self) -> None:
        self.bands = {}
        for name, ds in self.datasets.items():
            bands = self.spec.band_indices(name, ds.count, self.paths[name])
            expected = self.spec.channels[self.spec.names.index(name)]
            if len(bands) != expected:
                raise ValueError(f"'{name}' raster {self.paths[name]} gives {len(bands)} band(s) "
                                 f'but the config expects {expected} '
                                 '(`model.data_preprocessor.modality_channels`)')
            self.bands[name] = [b + 1 for b in bands]  # rasterio counts bands from 1

    def read(self, y0: int, x0: int, y1: int, x1: int) -> Tuple[np.ndarray, np.ndarray]:
        """The stacked float32 (h, w, ΣC) image of a window, in the config's channel order, and
        its (h, w) valid mask (no given modality is nodata); the valid pixels are checked and
        cleaned as the training loader does (dtype, NaN/±Inf, value range), the others get the
        missing-modality fill."""
        window = Window(x0, y0, x1 - x0, y1 - y0)
        where = f'in window (x={x0}, y={y0}, w={x1 - x0}, h={y1 - y0})'
        arrays = {name: np.moveaxis(ds.read(self.bands[name], window=window), 0, -1)
                  for name, ds in self.datasets.items()}
        arrays, valid = self.spec.check_valid(
            arrays, self.nodata, {n: f'raster {self.paths[n]} {where}' for n in arrays},
            {n: [self.paths[n]] for n in arrays})
        return self.spec.stack(arrays, self.missing), valid

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> 'SceneReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()
