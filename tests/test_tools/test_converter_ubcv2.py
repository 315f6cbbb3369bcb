"""UBCV2 converter on a DFC2023 track 1 layout: labelled ``roof_fine_train.json`` at the root,
val/test released as ``image_id/image_id_<split>.json`` image lists without annotations (one of
them spelling ``revolved`` as ``reolved``)."""
import json

import cv2
import numpy as np
import pytest
import tifffile
from test_converters import _check_consistency, _json, _no_json, _segments_by_cat, ubcv2

from pmtseg_mm.datasets.ubcv2 import UBCV2_THING_CLASSES

ConversionError = ubcv2.ConversionError


def _categories(misspelt=False):
    """DFC2023 categories: ids 1..12, supercategory = name (``reolved`` in image_id_test)."""
    cats = [dict(supercategory=n, id=i + 1, name=n) for i, n in enumerate(UBCV2_THING_CLASSES)]
    if misspelt:
        cats[10]['name'] = 'reolved'
    return cats


@pytest.fixture
def dfc(tmp_path):
    src = tmp_path / 'track1'
    rng = np.random.default_rng(4)
    names = dict(train=['P_0000.tif', 'P_0001.tif'], val=['P_0000.tif', 'P_0001.tif', 'P_0002.tif'])
    for split, files in names.items():
        for d in ('rgb', 'sar'):
            (src / split / d).mkdir(parents=True)
        for name in files:
            tifffile.imwrite(src / split / 'rgb' / name,
                             rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
            tifffile.imwrite(src / split / 'sar' / name,
                             rng.integers(0, 255, (32, 32), dtype=np.uint8))
    images = {s: [dict(file_name=n, height=32, width=32, id=i) for i, n in enumerate(files)]
              for s, files in names.items()}
    with open(src / 'roof_fine_train.json', 'w') as f:
        json.dump(dict(images=images['train'], categories=_categories(misspelt=True), annotations=[
            dict(id=1, image_id=0, category_id=11, iscrowd=0,
                 segmentation=[[4, 4, 12, 4, 12, 12, 4, 12]])]), f)
    (src / 'image_id').mkdir()
    with open(src / 'image_id' / 'image_id_val.json', 'w') as f:
        json.dump(dict(images=images['val'], annotations=[], categories=_categories()), f)
    return src


def _run(src, out, *extra):
    return ubcv2.main(['--src', str(src), '--out', str(out), '--workers', '1', *extra])


def test_dfc2023_train_and_unlabelled_val(dfc, tmp_path, capsys):
    out = tmp_path / 'out'
    with pytest.raises(ConversionError, match=r"split val: missing annotation file, tried .*; .*"
                       r"image_id_val\.json exists, but DFC2023 released val without labels: "
                       r"convert it for inference with --ann-template "
                       r"'image_id/image_id_\{split\}\.json' --allow-unlabelled"):
        _run(dfc, out)
    assert _no_json(out, 'val') and not _no_json(out, 'train')  # train was complete
    # 'reolved' (supercategory 'revolved') is matched to revolved = id 11
    pan, _ = _check_consistency(str(out), 'train')
    assert _segments_by_cat(pan, 'P_0000.png') == [(11, 64, 0), (13, 1024 - 64, 0)]

    val = ['--splits', 'val', '--ann-template', 'image_id/image_id_{split}.json']
    with pytest.raises(ConversionError, match=r"image_id_val\.json lists 3 images but no "
                       r"annotations: split val carries no labels .* all-background ground truth; "
                       r".*--allow-unlabelled"):
        _run(dfc, out, *val)
    assert not (out / 'annotations/images_val.json').exists()
    capsys.readouterr()
    assert _run(dfc, out, *val, '--allow-unlabelled') == dict(val=3)
    assert 'val 3 images (unlabelled: images only)' in capsys.readouterr().out
    listing = _json(out / 'annotations/images_val.json')
    assert [i['file_name'] for i in listing['images']] == ['P_0000.png', 'P_0001.png', 'P_0002.png']
    assert listing['annotations'] == [] and len(listing['categories']) == 13
    assert _no_json(out, 'val') and not (out / 'annotations/panoptic_val').exists()
    rgb = cv2.imread(str(out / 'optical/val/P_0002.png'))[..., ::-1]
    np.testing.assert_array_equal(rgb, tifffile.imread(dfc / 'val/rgb/P_0002.tif'))
    assert (out / 'sar/val/P_0001.tif').exists()

    # labels arriving later: a labelled run replaces the image list
    coco = _json(dfc / 'image_id/image_id_val.json')
    coco['annotations'] = [dict(id=1, image_id=2, category_id=1, iscrowd=0,
                                segmentation=[[0, 0, 8, 0, 8, 8, 0, 8]])]
    (dfc / 'roof_fine_val.json').write_text(json.dumps(coco))
    assert _run(dfc, out, '--splits', 'val') == dict(val=3)
    assert not (out / 'annotations/images_val.json').exists()
    pan, _ = _check_consistency(str(out), 'val')
    assert _segments_by_cat(pan, 'P_0002.png') == [(1, 64, 0), (13, 1024 - 64, 0)]
    # and back: an unlabelled run removes the labelled split's JSONs and PNGs
    assert _run(dfc, out, *val, '--allow-unlabelled') == dict(val=3)
    assert _no_json(out, 'val') and not (out / 'annotations/panoptic_val').exists()
    assert (out / 'annotations/images_val.json').exists()


def test_unknown_category_names_both_name_and_supercategory(dfc, tmp_path):
    coco = _json(dfc / 'roof_fine_train.json')
    coco['categories'][3].update(name='dome', supercategory='dome')
    (dfc / 'roof_fine_train.json').write_text(json.dumps(coco))
    with pytest.raises(ConversionError, match=r"roof_fine_train\.json: category 'dome' \(id 4, "
                       r"supercategory 'dome'\) is not one of the UBCV2 roof classes"):
        _run(dfc, tmp_path / 'o', '--splits', 'train')


def test_rgb_dir_sar_dir_and_sar_band(dfc, tmp_path):
    # the train images moved to other folders, the SAR as 3-band float32 stacks
    rng = np.random.default_rng(5)
    bands = {}
    for name in ('P_0000.tif', 'P_0001.tif'):
        (dfc / 'optical_train').mkdir(exist_ok=True)
        (dfc / 'radar' / 'train').mkdir(parents=True, exist_ok=True)
        (dfc / 'train' / 'rgb' / name).rename(dfc / 'optical_train' / name)
        stack = rng.normal(-10, 3, (32, 32, 3)).astype(np.float32)
        tifffile.imwrite(dfc / 'radar' / 'train' / name, stack)
        bands[name] = stack
    moved = ['--splits', 'train', '--rgb-dir', 'optical_{split}', '--sar-dir', 'radar/{split}']
    out = tmp_path / 'out'
    assert _run(dfc, out, *moved, '--sar-band', '2') == dict(train=2)
    for name, stack in bands.items():
        written = tifffile.imread(out / 'sar' / 'train' / name)
        assert written.dtype == np.float32
        np.testing.assert_array_equal(written, stack[..., 2])  # band 2, unchanged
    rgb = cv2.imread(str(out / 'optical/train/P_0001.png'))[..., ::-1]
    np.testing.assert_array_equal(rgb, tifffile.imread(dfc / 'optical_train/P_0001.tif'))
    with pytest.raises(ConversionError, match=r'radar/train/P_0000\.tif has 3 band\(s\); '
                       r'--sar-band 3 does not exist'):
        _run(dfc, tmp_path / 'o2', *moved, '--sar-band', '3')
    # the default folders no longer hold the train RGB: the error names the file looked for
    with pytest.raises(ConversionError, match=r'train/rgb/P_0000\.tif'):
        _run(dfc, tmp_path / 'o3', '--splits', 'train')
