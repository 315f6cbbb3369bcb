"""The modality contract: which co-registered modalities a model takes, how they are stacked
into one (H, W, ΣC) image, and how each is checked and cleaned on the way in.

One :class:`ModalityLayout` owns the channel slices of every modality (split and stack), band
selection, the non-finite (NaN/±Inf) replacement, the dtype / value-range checks, the fill of a
declared-missing modality, which modality is shown in colour, and the georeference tolerance.
Loading, the data preprocessor, ModalityDropout, the inferencer's input checks, whole-scene
reading, browsing and the visualiser all go through it (options: see docs/reliability.md).
"""
import logging
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

OPTION_KEYS = frozenset(
    {'bands', 'channels', 'nan_value', 'inf_value', 'dtype', 'value_range', 'on_mismatch',
     'nodata', 'rescale'})
ON_MISMATCH = ('error', 'warn')
FillType = Union[Dict[str, Union[float, Sequence[float]]], Sequence[Union[float, Sequence[float]]]]


class InvalidDataError(ValueError):
    """A data file that must not be trained on; ``files`` names the offending file(s)."""

    def __init__(self, message: str, files: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.files = tuple(files)


def channel_slices(channels: Sequence[int]) -> List[slice]:
    """Slice of each channel group in a stack of groups of ``channels`` channels."""
    bounds = np.cumsum((0, ) + tuple(int(c) for c in channels))
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def transforms_match(a: Sequence[float], b: Sequence[float]) -> bool:
    """Two geotransforms (GDAL order: x0, dx, rx, y0, ry, dy) equal up to 1e-3 pixel."""
    pixel = min(abs(v) for v in (a[1], a[5]) if v) if (a[1] or a[5]) else 1.0
    return all(math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-3 * pixel) for u, v in zip(a, b))


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_modality_options(name: str, opts: dict, prefix: str = '') -> dict:
    """Validate one modality's options (see :class:`ModalityLayout`); a normalised copy.
    Errors start with ``prefix`` (e.g. ``'LoadMultiModalImages: '``)."""
    key = f'{prefix}`modalities.{name}'
    if not isinstance(opts, dict):
        raise ValueError(f'{key}` must be a dict of options, got {opts!r}')
    unknown = set(opts) - OPTION_KEYS
    if unknown:
        raise ValueError(f'{key}` has unknown options {sorted(unknown)}; '
                         f'allowed: {sorted(OPTION_KEYS)}')
    opts = dict(opts)
    nodata = opts.get('nodata')
    if nodata is not None and (isinstance(nodata, bool) or not isinstance(nodata, (int, float))):
        raise ValueError(f'{key}.nodata` must be a number (NaN allowed), got {nodata!r}')
    if opts.get('nan_value') is not None and not _is_number(opts['nan_value']):
        raise ValueError(f'{key}.nan_value` must be a finite number, got {opts["nan_value"]!r}')
    inf = opts.get('inf_value')
    if inf is not None:
        pair = tuple(inf) if isinstance(inf, (list, tuple)) else (inf, inf)
        if len(pair) != 2 or not all(_is_number(v) for v in pair):
            raise ValueError(f'{key}.inf_value` must be a finite number or a (for -Inf, for +Inf) '
                             f'pair of finite numbers, got {inf!r}')
        opts['inf_value'] = pair
    if opts.get('dtype') is not None:
        names = [opts['dtype']] if isinstance(opts['dtype'], str) else list(opts['dtype'])
        try:
            opts['dtype'] = tuple(np.dtype(n).name for n in names)
        except TypeError:
            raise ValueError(f'{key}.dtype` must be a numpy dtype name or a list of them (e.g. '
                             f"'uint8'), got {opts['dtype']!r}") from None
    if opts.get('value_range') is not None:
        vr = opts['value_range']
        if (not isinstance(vr, (list, tuple)) or len(vr) != 2
                or not all(isinstance(v, (int, float)) for v in vr) or not vr[0] <= vr[1]):
            raise ValueError(f'{key}.value_range` must be (low, high) with low <= high, '
                             f'got {vr!r}')
        opts['value_range'] = (float(vr[0]), float(vr[1]))
    if opts.get('rescale') is not None:
        rs = opts['rescale']
        if (not isinstance(rs, (list, tuple)) or len(rs) != 2
                or not all(_is_number(v) for v in rs) or not rs[0] < rs[1]):
            raise ValueError(f'{key}.rescale` must be (low, high) with low < high (stored values '
                             f'mapped linearly to 0-255), got {rs!r}')
        opts['rescale'] = (float(rs[0]), float(rs[1]))
    if opts.setdefault('on_mismatch', 'error') not in ON_MISMATCH:
        raise ValueError(f'{key}.on_mismatch` must be one of {ON_MISMATCH}, '
                         f'got {opts["on_mismatch"]!r}')
    return opts


def check_modality_folders(modalities: Mapping[str, str],
                           suffixes: Optional[Mapping[str, str]],
                           owner: str) -> Tuple[Dict[str, str], Dict[str, str]]:
    """A dataset's ``modalities`` (name -> folder) and ``modality_suffixes`` (name -> file
    suffix, a subset) as dicts; one error naming ``owner`` and the key otherwise."""
    if not isinstance(modalities, Mapping) or not modalities:
        raise ValueError(f'{owner}: `modalities` must be a non-empty dict name -> folder, got '
                         f'{modalities!r}')
    suffixes = dict(suffixes or {})
    unknown = set(suffixes) - set(modalities)
    if unknown:
        raise ValueError(f'{owner}: `modality_suffixes` names {sorted(unknown)} which are not in '
                         f'`modalities` {list(modalities)}')
    return dict(modalities), suffixes


def resolve_fill_values(fill: Optional[FillType], modalities: Sequence[str],
                        channels: Sequence[int],
                        bgr_to_rgb: Union[bool, Sequence[bool]] = False,
                        owner: str = 'fill') -> Dict[str, np.ndarray]:
    """Fill values per modality, in the channel order of the loaded (stacked) image.

    Args:
        fill: None (0 everywhere), a dict ``name -> value or per-channel values`` in loaded
            channel order, or one group per modality in stack order - the layout of
            :class:`MultiModalDataPreprocessor`'s ``mean`` (e.g. ``{{_base_.modality_mean}}``).
        modalities: Modality names in stack order.
        channels: Channels per modality, in stack order.
        bgr_to_rgb: The preprocessor's ``bgr_to_rgb`` (a bool applies to the first modality);
            only used with the group layout, whose values of flipped modalities are RGB-ordered
            and are reversed here into the loaded BGR order.
        owner: Name used in error messages (e.g. ``ModalityDropout.fill``).

    Returns:
        dict: ``name -> float32 array (C,)``.
    """
    modalities, channels = list(modalities), [int(c) for c in channels]
    if len(modalities) != len(channels):
        raise ValueError(f'{owner}: {len(modalities)} modalities {modalities} but {len(channels)} '
                         f'channel counts {channels}')
    if fill is None:
        return {n: np.zeros(c, np.float32) for n, c in zip(modalities, channels)}
    if isinstance(fill, dict):
        unknown = sorted(set(fill) - set(modalities))
        if unknown:
            raise ValueError(f'{owner}: unknown modalities {unknown}; the sample has {modalities}')
        groups = [fill.get(n, 0.0) for n in modalities]
        flips = [False] * len(modalities)
    else:
        groups = list(fill)
        if len(groups) != len(modalities):
            raise ValueError(f'{owner}: {len(groups)} value groups for {len(modalities)} '
                             f'modalities {modalities}; give one group per modality (the '
                             "preprocessor's `mean` layout) or a dict name -> values")
        flips = ([bool(bgr_to_rgb)] + [False] * (len(modalities) - 1)
                 if isinstance(bgr_to_rgb, bool) else [bool(f) for f in bgr_to_rgb])
        if len(flips) != len(modalities):
            raise ValueError(f'{owner}: `bgr_to_rgb` has {len(flips)} entries for '
                             f'{len(modalities)} modalities')
    out: Dict[str, np.ndarray] = {}
    for name, c, group, flip in zip(modalities, channels, groups, flips):
        values = np.atleast_1d(np.asarray(group, dtype=np.float64)).astype(np.float32)
        if values.ndim != 1 or not np.isfinite(values).all():
            raise ValueError(f'{owner}: values of modality {name!r} must be finite numbers, '
                             f'got {group!r}')
        if values.size == 1:
            values = np.repeat(values, c)
        if values.size != c:
            raise ValueError(f'{owner}: modality {name!r} has {c} channel(s) but {values.size} '
                             f'fill values {group!r} were given')
        out[name] = values[::-1].copy() if flip else values
    return out


class ModalityLayout:
    """Modalities in stack order with their options, channels and missing-modality fill.

    Args:
        modalities: Names in stack (channel) order, or ``name -> options`` with the options of
            :class:`LoadMultiModalImages` (``bands``, ``channels``, ``nan_value``,
            ``inf_value``, ``dtype``, ``value_range``, ``on_mismatch``).
        channels: Channels per modality after band selection (None: not known yet; only the
            per-modality checks are available then).
        fill_values: ``name -> (C,)`` values of a declared-missing modality
            (:func:`resolve_fill_values`; default 0).
        prefix: Start of every error message (who checks, e.g. ``'LoadMultiModalImages: '``).
    """

    def __init__(self, modalities: Union[Sequence[str], Mapping[str, Optional[dict]]],
                 channels: Optional[Sequence[int]] = None,
                 fill_values: Optional[Dict[str, np.ndarray]] = None,
                 prefix: str = '') -> None:
        if isinstance(modalities, str) or not modalities:
            raise ValueError(f'{prefix}`modalities` must be a non-empty list of names or dict '
                             f'name -> options, got {modalities!r}')
        if not isinstance(modalities, Mapping):
            modalities = {name: {} for name in modalities}
        self.options: Dict[str, dict] = {
            name: check_modality_options(name, opts or {}, prefix)
            for name, opts in modalities.items()}
        self.names: Tuple[str, ...] = tuple(self.options)
        self.channels: Optional[Tuple[int, ...]] = None
        if channels is not None:
            self.channels = tuple(int(c) for c in channels)
            if len(self.channels) != len(self.names):
                raise ValueError(f'channels {self.channels} do not match the modalities '
                                 f'{list(self.names)}')
        self.fill_values = fill_values
        self.prefix = prefix
        self._warned: set = set()

    # --- channel layout ------------------------------------------------------------------
    @property
    def slices(self) -> Dict[str, slice]:
        """Channel slice of each modality in the stacked image."""
        return dict(zip(self.names, channel_slices(self._channels())))

    def _channels(self) -> Tuple[int, ...]:
        if self.channels is None:
            raise ValueError(f'the channels of the modalities {list(self.names)} are not known')
        return self.channels

    def split(self, img: np.ndarray) -> Dict[str, np.ndarray]:
        """``name -> (H, W, C)`` views of a stacked (H, W, ΣC) image."""
        self._check_stack(img)
        return {name: img[..., s] for name, s in self.slices.items()}

    def stack(self, arrays: Mapping[str, np.ndarray], missing: Sequence[str] = ()) -> np.ndarray:
        """The float32 (H, W, ΣC) stack of ``arrays`` (every modality but ``missing``, which
        gets its fill values)."""
        size = next(iter(arrays.values())).shape[:2]
        img = np.zeros(size + (sum(self._channels()), ), np.float32)
        for name, s in self.slices.items():
            if name in arrays:
                img[..., s] = arrays[name]
        return self.fill(img, missing)

    def fill(self, img: np.ndarray, missing: Sequence[str]) -> np.ndarray:
        """Set the channels of each ``missing`` modality to its fill values, in place."""
        unknown = [n for n in missing if n not in self.names]
        if unknown:
            raise KeyError(f'missing modalities {unknown} are not among the loaded modalities '
                           f'{list(self.names)}')
        self._check_stack(img)
        slices = self.slices
        for name in missing:
            values = (self.fill_values or {}).get(name)
            img[..., slices[name]] = 0 if values is None else values.astype(img.dtype, copy=False)
        return img

    def _check_stack(self, img: np.ndarray) -> None:
        if img.ndim != 3 or img.shape[2] != sum(self._channels()):
            raise ValueError(f'the stacked image has shape {img.shape} but the modalities '
                             f'{list(self.names)} have {list(self._channels())} channels')

    @property
    def colour(self) -> Optional[str]:
        """The modality shown in colour (its channels in cv2's BGR order): the first one with
        three channels; None without one."""
        return colour_modality(self.names, self._channels())

    # --- what is given -------------------------------------------------------------------
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

    def check_given(self, given: Sequence[str], missing: Sequence[str],
                    what: str = 'input') -> Tuple[str, ...]:
        """Every modality either given or declared missing, nothing else; the missing ones."""
        missing = self.check_missing(missing)
        unknown = sorted(set(given) - set(self.names))
        if unknown:
            raise ValueError(f'{what} modalities {unknown} are not in the config (it expects '
                             f'{list(self.names)})')
        both = [m for m in missing if m in given]
        if both:
            raise ValueError(f'modalities {both} are declared missing but were also given')
        absent = [n for n in self.names if n not in given and n not in missing]
        if absent:
            raise ValueError(f'no {what} for modalities {absent}; give them or declare them '
                             f'missing (missing={absent!r})')
        return missing

    # --- per-modality checks (``source`` says where the pixels come from, e.g. "file a.tif") -
    def band_indices(self, name: str, count: int, source: str) -> List[int]:
        """0-based indices of the bands of a ``count``-band ``source`` that ``name`` keeps."""
        bands = self.options[name].get('bands')
        if bands is None:
            return list(range(count))
        bad = [b for b in bands if not -count <= b < count]
        if bad:
            raise IndexError(f'{self.prefix}`modalities.{name}.bands` = {list(bands)} selects '
                             f'band(s) {bad} but {source} has {count} band(s) (indices are '
                             '0-based)')
        return [b % count for b in bands]

    def select_bands(self, name: str, array: np.ndarray, source: str,
                     files: Sequence[str] = ()) -> np.ndarray:
        """The configured bands of an (H, W, C) array, with the configured channel count."""
        if self.options[name].get('bands') is not None:
            array = array[..., self.band_indices(name, array.shape[2], source)]
        expected = self.options[name].get('channels')
        if expected is not None and array.shape[2] != expected:
            after = ' after band selection' if self.options[name].get('bands') else ''
            raise InvalidDataError(f'{self.prefix}`modalities.{name}.channels` expects '
                                   f'{expected} channel(s) but {source} gives '
                                   f'{array.shape[2]}{after}', files)
        return array

    def check_values(self, name: str, array: np.ndarray, source: str,
                     files: Sequence[str] = ()) -> Tuple[np.ndarray, List[str]]:
        """The stored ``dtype`` check, NaN/±Inf replacement (or an error naming the option) and
        the ``value_range`` check of one modality's pixels; returns the cleaned array and the
        dtype/range mismatches (the caller raises or warns by ``on_mismatch``)."""
        opts, problems = self.options[name], []
        if opts.get('dtype') is not None and array.dtype.name not in opts['dtype']:
            problems.append(f'is {array.dtype.name} but `modalities.{name}.dtype` expects '
                            f'{" or ".join(opts["dtype"])}')
        if np.issubdtype(array.dtype, np.floating):
            array = self.clean(name, array, source, files)
        if opts.get('rescale') is not None:
            low, high = opts['rescale']
            array = np.clip((array.astype(np.float32) - low) * (255.0 / (high - low)), 0, 255)
        value_range = opts.get('value_range')
        if value_range is not None:
            low, high = float(array.min()), float(array.max())
            if low < value_range[0] or high > value_range[1]:
                problems.append(f'has values in [{low:g}, {high:g}] outside '
                                f'`modalities.{name}.value_range` = {list(value_range)}')
        return array, problems

    def check_pixels(self, name: str, array: np.ndarray, source: str,
                     files: Sequence[str] = ()) -> np.ndarray:
        """:meth:`check_values` with its ``on_mismatch`` applied: a dtype/range mismatch raises
        (``'error'``) or is logged once per modality (``'warn'``); returns the cleaned array."""
        array, problems = self.check_values(name, array, source, files)
        if problems and self.options[name]['on_mismatch'] == 'error':
            raise InvalidDataError(
                f"{self.prefix}modality '{name}' {source} {problems[0]}: the data do not match "
                f"what the config declares for '{name}', whose mean/std "
                '(`model.data_preprocessor`) would then misnormalise them. Either compute mean/std '
                "for these files (the dataset converters write them to modality_stats.json) and "
                f'declare their `modalities.{name}.dtype`/`value_range`, or keep the statistics '
                f'and map the stored values onto them with `modalities.{name}.rescale=(low, '
                f"high)` (low..high -> 0..255), or set `modalities.{name}.on_mismatch='warn'` to "
                'load them anyway', files)
        if problems and name not in self._warned:
            self._warned.add(name)
            print_log(f"{self.prefix}modality '{name}' {source} {problems[0]} (warned once per "
                      'modality)', logger='current', level=logging.WARNING)
        return array

    def nodata_value(self, name: str, stored: Optional[float] = None) -> Optional[float]:
        """The nodata value of a modality: the ``nodata`` option, else the file's own
        (``stored``, e.g. a GeoTIFF's), else None."""
        value = self.options[name].get('nodata')
        return float(value) if value is not None else (
            None if stored is None else float(stored))

    @staticmethod
    def nodata_pixels(array: np.ndarray, nodata: Optional[float]) -> np.ndarray:
        """(H, W) True where every band of an (H, W, C) array equals ``nodata`` (NaN: is NaN), as
        GDAL's dataset mask: a dark pixel with one band at 0 is still data."""
        if nodata is None:
            return np.zeros(array.shape[:2], bool)
        if math.isnan(nodata):
            return np.isnan(array).all(-1) if np.issubdtype(array.dtype, np.floating) else \
                np.zeros(array.shape[:2], bool)
        return (array == nodata).all(-1)

    def check_valid(self, arrays: Mapping[str, np.ndarray],
                    nodata: Mapping[str, Optional[float]], sources: Mapping[str, str],
                    files: Mapping[str, Sequence[str]]
                    ) -> Tuple[Dict[str, np.ndarray], np.ndarray]:
        """Nodata-aware :meth:`check_pixels` of co-registered (H, W, C) arrays.

        A pixel is valid only where no given modality is nodata (``nodata[name]``). The checks
        (dtype, NaN/±Inf, value range) look at valid pixels only; invalid pixels get the
        modality's fill values (those of a missing modality), so the network sees what it saw
        for a dropped modality in training. Returns the float32 arrays and the (H, W) valid mask.
        """
        size = next(iter(arrays.values())).shape[:2]
        valid = np.ones(size, bool)
        for name, array in arrays.items():
            valid &= ~self.nodata_pixels(array, nodata.get(name))
        out = {}
        for name, array in arrays.items():
            full = np.empty(array.shape, np.float32)
            if valid.any():
                checked = self.check_pixels(name, array[valid][:, None, :], sources[name],
                                            files.get(name, ()))
                full[valid] = checked[:, 0]
            if not valid.all():
                values = (self.fill_values or {}).get(name)
                full[~valid] = 0 if values is None else values
            out[name] = full
        return out, valid

    def clean(self, name: str, array: np.ndarray, source: str,
              files: Sequence[str] = ()) -> np.ndarray:
        """Replace NaN/±Inf as configured (``nan_value``, ``inf_value``), or raise naming the
        source and the option to set."""
        nan, inf = np.isnan(array), np.isinf(array)
        if not nan.any() and not inf.any():
            return array
        opts = self.options[name]
        if nan.any() and opts.get('nan_value') is None:
            raise InvalidDataError(
                f"{self.prefix}modality '{name}' {source} contains NaN pixels ({int(nan.sum())}); "
                f'set '
                f'`modalities.{name}.nan_value` to the (finite) value that should replace them',
                files)
        if inf.any() and opts.get('inf_value') is None:
            signs = '/'.join(s for s, m in (('+Inf', array == np.inf), ('-Inf', array == -np.inf))
                             if m.any())
            raise InvalidDataError(
                f"{self.prefix}modality '{name}' {source} contains {signs} pixels "
                f'({int(inf.sum())}); set '
                f'`modalities.{name}.inf_value` to the finite value (or (for -Inf, for +Inf) '
                'pair) that should replace them', files)
        neg, pos = opts.get('inf_value') or (0.0, 0.0)
        return np.nan_to_num(array, nan=float(opts.get('nan_value') or 0.0), posinf=pos,
                             neginf=neg)


def colour_modality(names: Sequence[str], channels: Sequence[int]) -> Optional[str]:
    """The first modality of three channels (shown in colour, BGR as cv2 decodes), or None."""
    return next((n for n, c in zip(names, channels) if int(c) == 3), None)
