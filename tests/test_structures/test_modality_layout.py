"""ModalityLayout: the one modality contract (stacking, bands, non-finite pixels, dtype/range,
missing-modality fill, colour modality, georeference tolerance), checked by hand."""
import logging

import numpy as np
import pytest
from mmengine.logging import MMLogger

from pmtseg_mm.structures import (InvalidDataError, ModalityLayout, channel_slices,
                                  colour_modality, transforms_match)


def layout(**options):
    return ModalityLayout({'optical': options.get('optical', {}), 'depth': options.get('depth', {}),
                           'sar': {}}, (3, 1, 2),
                          dict(depth=np.array([7.0], np.float32), sar=np.array([1.0, 2.0])))


def test_slices_split_stack_fill():
    assert channel_slices((3, 1, 2)) == [slice(0, 3), slice(3, 4), slice(4, 6)]
    lay = layout()
    assert lay.slices == dict(optical=slice(0, 3), depth=slice(3, 4), sar=slice(4, 6))
    img = np.arange(2 * 2 * 6, dtype=np.float32).reshape(2, 2, 6)
    parts = lay.split(img)
    assert parts['depth'].shape == (2, 2, 1) and parts['depth'][1, 1, 0] == 6 * 3 + 3
    stacked = lay.stack(dict(optical=parts['optical'], sar=parts['sar']), missing=('depth', ))
    assert stacked.dtype == np.float32
    np.testing.assert_array_equal(stacked[..., 3], 7.0)  # the depth fill value
    np.testing.assert_array_equal(stacked[..., [0, 1, 2, 4, 5]], img[..., [0, 1, 2, 4, 5]])
    lay.fill(stacked, ('sar', ))
    assert stacked[0, 0, 4:].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r'has shape \(2, 2, 5\) but the modalities'):
        lay.split(img[..., :5])
    with pytest.raises(ValueError, match='channels of the modalities .* are not known'):
        ModalityLayout(['a', 'b']).slices


def test_given_and_missing():
    lay = layout()
    assert lay.check_given(('optical', 'sar'), ('depth', )) == ('depth', )
    with pytest.raises(ValueError, match=r"no raster for modalities \['sar'\]"):
        lay.check_given(('optical', 'depth'), (), what='raster')
    with pytest.raises(ValueError, match=r"input modalities \['nir'\] are not in the config"):
        lay.check_given(('optical', 'depth', 'sar', 'nir'), ())
    with pytest.raises(ValueError, match='declared missing but were also given'):
        lay.check_given(('optical', 'depth', 'sar'), ('depth', ))
    with pytest.raises(ValueError, match='declares every modality missing'):
        lay.check_missing(('optical', 'depth', 'sar'))


def test_bands_and_channels():
    lay = layout(optical=dict(bands=[2, -1, 0], channels=3))
    array = np.arange(4, dtype=np.uint8).reshape(1, 1, 4)
    assert lay.band_indices('optical', 4, 'file a.tif') == [2, 3, 0]
    assert lay.select_bands('optical', array, 'file a.tif')[0, 0].tolist() == [2, 3, 0]
    with pytest.raises(IndexError, match=r'bands` = \[2, -1, 0\] selects band\(s\) \[2\] but '
                       r'file b.tif has 2 band'):
        lay.select_bands('optical', array[..., :2], 'file b.tif')
    with pytest.raises(InvalidDataError, match='expects 3 channel.* gives 2') as err:
        layout(optical=dict(channels=3)).select_bands('optical', array[..., :2], 'c.tif',
                                                      ['c.tif'])
    assert err.value.files == ('c.tif', )


def test_non_finite_and_value_checks():
    lay = layout(depth=dict(nan_value=-1.0, inf_value=(-5.0, 5.0), dtype='float32',
                            value_range=(-5, 10)))
    data = np.array([[[np.nan], [np.inf], [-np.inf], [3.0]]], np.float32)
    cleaned, problems = lay.check_values('depth', data, 'file d.tif')
    assert cleaned[0, :, 0].tolist() == [-1.0, 5.0, -5.0, 3.0] and problems == []
    _, problems = lay.check_values('depth', np.full((1, 2, 1), 20.0), 'file d.tif')
    assert problems == ['is float64 but `modalities.depth.dtype` expects float32',
                        'has values in [20, 20] outside `modalities.depth.value_range` = '
                        '[-5.0, 10.0]']
    strict = ModalityLayout(['depth'], prefix='LoadMultiModalImages: ')
    with pytest.raises(InvalidDataError, match=r"LoadMultiModalImages: modality 'depth' file "
                       r'd.tif contains NaN pixels \(1\); set `modalities.depth.nan_value`'):
        strict.clean('depth', data, 'file d.tif')
    with pytest.raises(InvalidDataError, match=r'contains \+Inf/-Inf pixels \(2\)'):
        strict.clean('depth', np.nan_to_num(data, nan=0.0, posinf=np.inf, neginf=-np.inf),
                     'file d.tif')


def test_check_pixels_raises_or_warns_once_per_modality():
    """One mismatch policy for the loader, the inferencer's arrays and the scene reader."""
    bad = np.full((2, 2, 1), 20.0, np.float32)
    strict = ModalityLayout({'depth': dict(value_range=(0, 10))}, prefix='reader: ')
    with pytest.raises(InvalidDataError) as err:
        strict.check_pixels('depth', bad, 'raster d.tif', ['d.tif'])
    assert str(err.value).startswith(
        "reader: modality 'depth' raster d.tif has values in [20, 20] outside "
        '`modalities.depth.value_range` = [0.0, 10.0]: the data do not match what the config '
        "declares for 'depth'")
    for remedy in ('modality_stats.json', '`modalities.depth.rescale=(low, high)`',
                   "`modalities.depth.on_mismatch='warn'`"):
        assert remedy in str(err.value)
    assert err.value.files == ('d.tif', )
    lenient = ModalityLayout({'depth': dict(value_range=(0, 10), on_mismatch='warn')})
    logger, records = MMLogger.get_current_instance(), []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        for _ in range(3):
            out = lenient.check_pixels('depth', bad, 'input array')
    finally:
        logger.removeHandler(handler)
    assert out is bad
    warned = [r.getMessage() for r in records if 'value_range' in r.getMessage()]
    assert warned == ["modality 'depth' input array has values in [20, 20] outside "
                      '`modalities.depth.value_range` = [0.0, 10.0] (warned once per modality)']


def test_rescale_maps_stored_values_onto_the_statistics_range():
    """16-bit optical kept under 8-bit statistics: 0..4000 -> 0..255, clipped, then range-checked."""
    lay = layout(optical=dict(dtype='uint16', rescale=(0, 4000), value_range=(0, 255)))
    data = np.array([[[0], [1000], [4000], [6000]]], np.uint16)
    out, problems = lay.check_values('optical', data, 'file o.tif')
    assert problems == [] and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 0], [0.0, 63.75, 255.0, 255.0])
    with pytest.raises(ValueError, match=r'`modalities.optical.rescale` must be \(low, high\) '
                       r'with low < high'):
        layout(optical=dict(rescale=(10, 10)))


def test_bad_options_name_the_key():
    with pytest.raises(ValueError, match=r'`modalities.depth` has unknown options \[.no_data.\]'):
        ModalityLayout(dict(depth=dict(no_data=0)))
    with pytest.raises(ValueError, match=r"`modalities.depth.nodata` must be a number \(NaN "
                       r"allowed\), got '-9999'"):
        ModalityLayout(dict(depth=dict(nodata='-9999')))
    with pytest.raises(ValueError, match=r'`modalities.depth.inf_value` must be a finite'):
        ModalityLayout(dict(depth=dict(inf_value=float('inf'))))
    with pytest.raises(ValueError, match='channels .* do not match the modalities'):
        ModalityLayout(['a', 'b'], (3, ))


def test_colour_modality_and_georeference_tolerance():
    assert colour_modality(('depth', 'optical'), (1, 3)) == 'optical'
    assert colour_modality(('depth', 'sar'), (1, 2)) is None
    assert layout().colour == 'optical'
    t = (500000.0, 0.5, 0.0, 4800000.0, 0.0, -0.5)
    assert transforms_match(t, (500000.0004, 0.5, 0.0, 4800000.0, 0.0, -0.5))  # < 1e-3 px
    assert not transforms_match(t, (500000.001, 0.5, 0.0, 4800000.0, 0.0, -0.5))  # 2e-3 px
