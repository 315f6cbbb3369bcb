"""Georeferenced outputs of a scene: Cloud-Optimized GeoTIFFs written atomically, and the joined
instances as GeoJSON (and GeoPackage) polygons."""
import os
import os.path as osp
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
from mmdet.evaluation.functional import INSTANCE_OFFSET

from .instances import SceneInstance, crop, intersect
from .reader import SceneReader

try:  # see reader.py
    import rasterio
    import rasterio.shutil
    from rasterio import features as rio_features
    from rasterio.windows import Window
except ImportError:  # pragma: no cover
    rasterio = None


def to_cog(src_path: str, out_path: str) -> None:
    """Copy a tiled GeoTIFF to ``out_path`` as a Cloud-Optimized GeoTIFF (GDAL's COG driver:
    256-px tiles, deflate, overviews by nearest neighbour so class ids stay class ids), written
    to a temporary name and renamed."""
    with temporary_output(out_path, '.cog') as tmp:
        rasterio.shutil.copy(src_path, tmp, driver='COG', COMPRESS='DEFLATE', BLOCKSIZE=256,
                             OVERVIEW_RESAMPLING='NEAREST', BIGTIFF='IF_SAFER')


def raster_profile(reader: SceneReader, dtype: str, nodata) -> dict:
    tiled = reader.width >= 256 and reader.height >= 256
    profile = dict(driver='GTiff', width=reader.width, height=reader.height, count=1,
                   dtype=dtype, crs=reader.crs, transform=reader.transform, nodata=nodata,
                   compress='deflate')
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


@contextmanager
def temporary_output(path: str, suffix: str = '', publish: bool = True) -> Iterator[str]:
    """A temporary file name next to ``path`` (its folder created). With ``publish`` the file is
    renamed onto ``path`` when the block ends without error; it is removed in every other case,
    so no partial output is ever left behind. ``publish=False``: a scratch file of the block."""
    folder = osp.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}{suffix}'
    try:
        yield tmp
        if publish:
            os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def instance_features(instances: Sequence[SceneInstance], reader: SceneReader,
                      classes: Sequence[str]) -> Iterator[dict]:
    """GeoJSON features (Polygon/MultiPolygon in the scene CRS) of the scene instances with
    ``id``, ``class``, ``label``, ``score``, ``area_px`` and ``area_m2`` (None when the CRS is
    not in metres)."""
    pixel_area = abs(reader.transform.a * reader.transform.e - reader.transform.b *
                     reader.transform.d)
    metres = reader.crs is not None and reader.crs.is_projected and \
        abs((reader.crs.linear_units_factor or ('', 0))[1] - 1.0) < 1e-9
    for index, inst in enumerate(instances, start=1):
        y0, x0 = inst.box[:2]
        transform = reader.transform * rasterio.Affine.translation(x0, y0)
        polygons = [geom for geom, value in rio_features.shapes(
            inst.mask.astype(np.uint8), mask=inst.mask, connectivity=4, transform=transform)
            if value == 1]
        if not polygons:
            continue
        geometry = polygons[0] if len(polygons) == 1 else dict(
            type='MultiPolygon', coordinates=[p['coordinates'] for p in polygons])
        yield dict(type='Feature', geometry=geometry, properties=dict(
            id=index, label=inst.label, **{'class': classes[inst.label]},
            score=round(inst.score, 4), area_px=inst.area,
            area_m2=round(inst.area * pixel_area, 3) if metres else None,
            windows=inst.members))


GPKG_SCHEMA = dict(geometry='MultiPolygon', properties=dict(
    id='int', label='int', **{'class': 'str'}, score='float', area_px='int', area_m2='float',
    windows='int'))


def write_geopackage(features: Iterator[dict], crs, out_path: str) -> int:
    """Write instance features (from :func:`instance_features`) to a GeoPackage layer
    ``instances`` (MultiPolygon, the scene CRS; spatially indexed by GDAL), atomically; returns
    the number of features written."""
    import fiona  # runtime requirement (requirements/runtime.txt), needed only here
    count = 0
    with temporary_output(out_path, '.gpkg') as tmp, \
            fiona.open(tmp, 'w', driver='GPKG', layer='instances', schema=GPKG_SCHEMA,
                       crs_wkt=crs.to_wkt() if crs is not None else None) as layer:
        for feature in features:
            geometry = feature['geometry']
            if geometry['type'] == 'Polygon':
                geometry = dict(type='MultiPolygon', coordinates=[geometry['coordinates']])
            layer.write(dict(type='Feature', geometry=geometry, properties=feature['properties']))
            count += 1
    return count


def write_panoptic(reader: SceneReader, blocks, sem_path: str, out_path: str,
                   instances: Sequence[SceneInstance], num_things: int,
                   num_classes: int) -> None:
    """Panoptic raster by blocks (then as a COG): stuff from the semantic raster, things from
    the joined instances (higher scores on top); thing-class pixels without an instance and
    nodata pixels are void."""
    if (len(instances) + 1) * INSTANCE_OFFSET + num_classes >= 2**31:
        raise ValueError(f'{len(instances)} instances do not fit the int32 panoptic encoding')
    with temporary_output(out_path, publish=False) as tmp:
        with rasterio.open(sem_path) as sem, \
                rasterio.open(tmp, 'w', **raster_profile(reader, 'int32', None)) as pan_out:
            for by0, bx0, by1, bx1 in blocks:
                win = Window(bx0, by0, bx1 - bx0, by1 - by0)
                semantic = sem.read(1, window=win).astype(np.int32)
                pan = np.where((semantic < num_things) | (semantic >= num_classes), num_classes,
                               semantic).astype(np.int32)
                for index in range(len(instances), 0, -1):  # lowest score first
                    inst = instances[index - 1]
                    inter = intersect(inst.box, (by0, bx0, by1, bx1))
                    if inter is None:
                        continue
                    m = crop(inst, inter)
                    sl = (slice(inter[0] - by0, inter[2] - by0), slice(inter[1] - bx0,
                                                                       inter[3] - bx0))
                    pan[sl][m] = inst.label + index * INSTANCE_OFFSET
                pan_out.write(pan[None], window=win)
        to_cog(tmp, out_path)
