"""MultiModalCocoPanopticDataset without ``metainfo`` reads its classes from the annotation JSON's
``categories`` (things first, labels by name); a given metainfo that conflicts with them fails
with one error naming the JSON."""
import json
import os.path as osp

import pytest

from pmtseg_mm.datasets import MultiModalCocoPanopticDataset
from pmtseg_mm.datasets.synthetic import SYNTHETIC_METAINFO, generate_synthetic

THINGS = SYNTHETIC_METAINFO['thing_classes']
STUFF = SYNTHETIC_METAINFO['stuff_classes']


@pytest.fixture(scope='module')
def data_root(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp('synthetic'))
    generate_synthetic(root, num_train=2, num_val=1, size=64, seed=0, progress=False)
    return root


def _dataset(root: str, ann: str = 'annotations/panoptic_val.json', **kwargs):
    return MultiModalCocoPanopticDataset(
        data_root=root, ann_file=ann, data_prefix=dict(img='optical/val/',
                                                       seg='annotations/panoptic_val/'),
        modalities=dict(optical='optical/val/', depth='depth/val/'),
        modality_suffixes=dict(optical='.png', depth='.tif'), test_mode=True, **kwargs)


def _shuffled_json(root: str) -> str:
    """The val JSON with its categories listed stuff first and in reverse (ids unchanged)."""
    with open(osp.join(root, 'annotations', 'panoptic_val.json')) as f:
        data = json.load(f)
    data['categories'] = data['categories'][::-1]
    path = osp.join(root, 'annotations', 'panoptic_val_shuffled.json')
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def _labels_by_name(dataset) -> dict:
    """{class name: set of category names of the segments carrying that label}."""
    with open(dataset.ann_file) as f:
        data = json.load(f)
    cat_name = {c['id']: c['name'] for c in data['categories']}
    seg_cat = {(a['image_id'], s['id']): cat_name[s['category_id']]
               for a in data['annotations'] for s in a['segments_info']}
    found: dict = {}
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        for seg in info['segments_info']:
            name = dataset.metainfo['classes'][seg['category']]
            found.setdefault(name, set()).add(seg_cat[(info['img_id'], seg['id'])])
            assert seg['is_thing'] == (seg['category'] < len(dataset.metainfo['thing_classes']))
    return found


def test_classes_read_from_the_json(data_root):
    dataset = _dataset(data_root)
    meta = dataset.metainfo
    assert meta['classes'] == THINGS + STUFF
    assert (meta['thing_classes'], meta['stuff_classes']) == (THINGS, STUFF)
    assert meta['palette'] == [tuple(c) for c in SYNTHETIC_METAINFO['palette']]
    found = _labels_by_name(dataset)
    assert found and all(names == {name} for name, names in found.items())


def test_json_order_does_not_change_the_labels(data_root):
    """Stuff-first JSON: still things first, and each label still names its category."""
    dataset = _dataset(data_root, ann=_shuffled_json(data_root))
    assert dataset.metainfo['classes'] == THINGS[::-1] + STUFF[::-1]
    found = _labels_by_name(dataset)
    assert found and all(names == {name} for name, names in found.items())
    given = _dataset(data_root, ann=_shuffled_json(data_root), metainfo=SYNTHETIC_METAINFO)
    assert given.metainfo['classes'] == THINGS + STUFF
    assert all(names == {name} for name, names in _labels_by_name(given).items())


def test_given_classes_without_the_split_take_isthing(data_root):
    dataset = _dataset(data_root, metainfo=dict(classes=THINGS + STUFF))
    assert dataset.metainfo['thing_classes'] == THINGS
    assert dataset.metainfo['stuff_classes'] == STUFF


@pytest.mark.parametrize('metainfo, message', [
    (dict(classes=('person', 'car'), thing_classes=('person', 'car'), stuff_classes=()),
     "classes ['person'] are not categories of the JSON"),
    (dict(classes=THINGS + STUFF, thing_classes=THINGS + ('road', ),
          stuff_classes=STUFF[1:]), "classes ['road'] are things in one and stuff in the other"),
    (dict(classes=STUFF + THINGS, thing_classes=THINGS, stuff_classes=STUFF),
     'must be `thing_classes`'),
])
def test_conflicting_metainfo_names_the_json(data_root, metainfo, message):
    with pytest.raises(ValueError) as err:
        _dataset(data_root, metainfo=metainfo)
    text = str(err.value)
    assert message in text and 'panoptic_val.json' in text and 'metainfo=dict(classes=' in text


def test_categories_without_isthing_name_the_json(data_root, tmp_path):
    with open(osp.join(data_root, 'annotations', 'panoptic_val.json')) as f:
        data = json.load(f)
    for cat in data['categories']:
        del cat['isthing']
    path = tmp_path / 'no_isthing.json'
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r'no_isthing\.json: categories .* have no `isthing`'):
        _dataset(data_root, ann=str(path))
