"""Write mmseg semantic label PNGs from the common COCO-panoptic layout (for configs/mmseg/).

Usage::

    python tools/dataset_converters/panoptic_to_semantic.py --data-root data/synthetic_depth \
        --splits train val

Writes ``<data-root>/annotations/semantic_<split>/<stem>.png`` (label = index of the category
in the panoptic JSON, things first; 255 = void) and prints the class names in label order, the
``metainfo=dict(classes=...)`` of ``MultiModalSegDataset``.
"""
import argparse
import json
from typing import Optional, Sequence

from pmtseg_mm.segmentation import panoptic_to_semantic


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--data-root', required=True, help='dataset root of the common layout')
    parser.add_argument('--splits', nargs='+', default=['train', 'val'],
                        help='splits with annotations/panoptic_<split>.json')
    args = parser.parse_args(argv)
    classes = None
    for split in args.splits:
        found = panoptic_to_semantic(args.data_root, split)
        if classes is not None and found != classes:
            raise SystemExit(f'panoptic_to_semantic: split {split!r} has categories {found}, '
                             f'split {args.splits[0]!r} has {classes}')
        classes = found
    print(json.dumps({'classes': classes}))


if __name__ == '__main__':
    main()
