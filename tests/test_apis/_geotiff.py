"""GeoTIFF inputs of the whole-scene tests (not a test module): one writer and one
georeference, UTM zone 31N (EPSG:32631) with 0.5 m pixels from (500000 m E, 4800000 m N)."""
import numpy as np
import rasterio
from rasterio.transform import Affine, from_origin

ORIGIN = (500000.0, 4800000.0)  # UTM 31N metres: west edge, north edge
PIXEL = 0.5  # metres
CRS = 'EPSG:32631'


def grid_transform(shift_x: float = 0.0) -> Affine:
    """The scenes' north-up grid, its west edge moved east by ``shift_x`` pixels (west if
    negative)."""
    return from_origin(ORIGIN[0] + shift_x * PIXEL, ORIGIN[1], PIXEL, PIXEL)


def write_geotiff(path, data: np.ndarray, crs: str = CRS, transform: Affine = None,
                  nodata=None) -> str:
    """Write the (bands, H, W) array ``data`` as a GeoTIFF of its dtype on :func:`grid_transform`
    (or ``transform``), declaring ``nodata`` if given; returns the path as a str."""
    with rasterio.open(path, 'w', driver='GTiff', width=data.shape[2], height=data.shape[1],
                       count=data.shape[0], dtype=data.dtype, crs=crs, nodata=nodata,
                       transform=transform or grid_transform()) as f:
        f.write(data)
    return str(path)


def write_scene(folder, arrays: dict, files: dict = None, **kwargs) -> dict:
    """Each modality's (bands, H, W) array as ``folder/<files[name]>`` (default
    ``<name>.tif``); ``kwargs`` go to :func:`write_geotiff`. Returns modality -> path."""
    files = files or {}
    return {name: write_geotiff(folder / files.get(name, f'{name}.tif'), data, **kwargs)
            for name, data in arrays.items()}
