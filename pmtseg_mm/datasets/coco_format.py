"""Writing the on-disk COCO annotation format (used by the synthetic generator and converters)."""
import json
import os
import os.path as osp
from typing import Any, List

import numpy as np
from pycocotools import mask as mask_utils


def atomic_write_json(path: str, obj: Any) -> None:
    """Write JSON to a temporary file next to ``path`` and move it into place, so an
    interrupted run never leaves a complete-looking annotation file."""
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'w') as f:
            json.dump(obj, f)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def mask_bbox(mask: np.ndarray) -> List[int]:
    """COCO ``[x, y, w, h]`` box of a non-empty boolean mask."""
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


def mask_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a boolean mask, JSON-serialisable (``counts`` as str)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle
