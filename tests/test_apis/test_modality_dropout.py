"""ModalityDropout and the shared fill used for missing modalities at inference."""
import numpy as np
import pytest
import torch
from mmdet.registry import TRANSFORMS

from pmtseg_mm.datasets.transforms import ModalityDropout
from pmtseg_mm.structures import ModalityLayout, resolve_fill_values
from pmtseg_mm.models.data_preprocessors import MultiModalDataPreprocessor

MEAN = [[123.675, 116.28, 103.53], [1.0001]]
STD = [[58.395, 57.12, 57.375], [3.0328]]


def _sample(seed=0):
    rng = np.random.RandomState(seed)
    img = rng.uniform(0, 255, (8, 10, 4)).astype(np.float32)
    return dict(img=img, modalities=('optical', 'depth'), modality_channels=(3, 1))


def test_resolve_fill_values_layouts():
    groups = resolve_fill_values(MEAN, ('optical', 'depth'), (3, 1), bgr_to_rgb=True)
    # the preprocessor's mean is RGB for a flipped modality; loaded channels are BGR
    np.testing.assert_allclose(groups['optical'], [103.53, 116.28, 123.675], rtol=1e-6)
    np.testing.assert_allclose(groups['depth'], [1.0001], rtol=1e-6)
    as_dict = resolve_fill_values(dict(depth=2.5), ('optical', 'depth'), (3, 1))
    np.testing.assert_array_equal(as_dict['optical'], [0, 0, 0])
    np.testing.assert_array_equal(as_dict['depth'], [2.5])
    zeros = resolve_fill_values(None, ('optical', 'depth'), (3, 1))
    assert zeros['optical'].shape == (3, ) and not zeros['depth'].any()


@pytest.mark.parametrize('fill, match', [
    ([[1, 2, 3]], '1 value groups for 2 modalities'),
    (dict(sar=1.0), "unknown modalities \\['sar'\\]"),
    (dict(optical=[1.0, 2.0]), "'optical' has 3 channel"),
    (dict(depth=float('nan')), 'finite numbers'),
])
def test_resolve_fill_values_bad(fill, match):
    with pytest.raises(ValueError, match=match):
        resolve_fill_values(fill, ('optical', 'depth'), (3, 1), owner='ModalityDropout.fill')


def test_dropout_blanks_to_normalised_zero():
    """A dropped modality is the preprocessor's mean, so the model input is exactly 0 there and
    the other modality is untouched."""
    t = TRANSFORMS.build(dict(type='ModalityDropout', prob=1.0, modalities=['depth'], fill=MEAN,
                              bgr_to_rgb=True))
    sample = _sample()
    optical = sample['img'][..., :3].copy()
    out = t(sample)
    assert out['missing_modalities'] == ('depth', )
    np.testing.assert_array_equal(out['img'][..., :3], optical)
    np.testing.assert_allclose(out['img'][..., 3], 1.0001, rtol=1e-6)
    pre = MultiModalDataPreprocessor(modality_channels=(3, 1), mean=MEAN, std=STD,
                                     bgr_to_rgb=True)
    inputs = torch.from_numpy(out['img']).permute(2, 0, 1)
    normalised = pre(dict(inputs=[inputs], data_samples=None), False)['inputs']
    assert normalised[0, 3].abs().max().item() < 1e-5
    # the optical slice is the untouched pixels, BGR flipped to RGB, minus the RGB mean, over std
    expected = (torch.from_numpy(optical[..., ::-1].copy()).permute(2, 0, 1)
                - torch.tensor(MEAN[0])[:, None, None]) / torch.tensor(STD[0])[:, None, None]
    torch.testing.assert_close(normalised[0, :3], expected, atol=1e-5, rtol=1e-6)


def test_dropout_probability_and_choice():
    np.random.seed(0)
    t = ModalityDropout(prob=0.3, modalities=('depth', ), fill=dict(depth=7.0))
    dropped = sum(bool(t(_sample(i))['missing_modalities']) for i in range(400))
    assert 90 <= dropped <= 150  # binomial(400, 0.3): mean 120, sd 9.2
    never = ModalityDropout(prob=0.0, modalities=('depth', ))
    sample = _sample()
    before = sample['img'].copy()
    assert never(sample)['missing_modalities'] == ()
    np.testing.assert_array_equal(sample['img'], before)
    np.random.seed(1)
    both = ModalityDropout(prob=1.0, modalities=('optical', ), fill=dict(optical=[1, 2, 3]))
    out = both(_sample())
    assert out['missing_modalities'] == ('optical', )
    np.testing.assert_array_equal(out['img'][0, 0, :3], [1, 2, 3])


@pytest.mark.parametrize('kwargs, match', [
    (dict(prob=1.5, modalities=['depth']), '`prob` must be a number in \\[0, 1\\]'),
    (dict(prob=0.5, modalities='depth'), 'non-empty list of modality names'),
])
def test_dropout_bad_args(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModalityDropout(**kwargs)


def test_dropout_bad_samples():
    with pytest.raises(KeyError, match='not loaded'):
        ModalityDropout(prob=1.0, modalities=['sar'])(_sample())
    with pytest.raises(ValueError, match='would drop every modality'):
        ModalityDropout(prob=1.0, modalities=['optical', 'depth'])(_sample())
    with pytest.raises(KeyError, match='after LoadMultiModalImages'):
        ModalityDropout(prob=1.0, modalities=['depth'])(dict(img=np.zeros((2, 2, 4))))


def test_layout_fill_checks_shape():
    layout = ModalityLayout(('optical', 'depth'), (3, 1), dict(depth=np.ones(1, np.float32)))
    with pytest.raises(ValueError, match='channels'):
        layout.fill(np.zeros((4, 4, 3), np.float32), ('depth', ))
    with pytest.raises(KeyError, match=r"\['sar'\] are not among the loaded modalities"):
        layout.fill(np.zeros((4, 4, 4), np.float32), ('sar', ))
