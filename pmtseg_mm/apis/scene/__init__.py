"""Whole-scene inference on co-registered GeoTIFFs: windowed reading, overlapping windows,
centre-weighted blending of semantic scores, instances joined across window borders,
georeferenced rasters and GeoJSON polygons.

Memory is bounded by the block size, not the scene: the scene is processed in blocks of
``block_size`` pixels; each block accumulates the scores of every window of one global window
grid that touches it (so block borders are seamless), writes its part of the semantic raster and
keeps only the thing instances (cropped to their boxes). A second pass writes the panoptic raster
block by block from the semantic raster and the joined instances.

``grid`` (windows and weights), ``reader`` (co-registered rasters), ``instances`` (joining),
``writer`` (rasters, GeoJSON) and ``driver`` (:func:`infer_scene`, a client of
``PMTSeg.predict_window_scores``).
"""
from .driver import SceneResult, infer_scene, predict_windows
from .grid import WindowGrid, centre_weights, window_starts
from .instances import SceneInstance, WindowInstance, join_instances, suppress_duplicates
from .reader import SceneReader

__all__ = ['SceneInstance', 'SceneReader', 'SceneResult', 'WindowGrid', 'WindowInstance',
           'centre_weights', 'infer_scene', 'join_instances', 'predict_windows',
           'suppress_duplicates', 'window_starts']
