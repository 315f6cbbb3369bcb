"""Thing instances predicted window by window, and their joining across window borders."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np


@dataclass
class WindowInstance:
    """A thing predicted in one window, its mask cropped to its box (scene pixel coords)."""
    label: int
    score: float
    window: Tuple[int, int, int, int]  # (y0, x0, y1, x1) of the window that predicted it
    box: Tuple[int, int, int, int]  # (y0, x0, y1, x1), exclusive ends
    mask: np.ndarray  # bool (y1 - y0, x1 - x0)

    @classmethod
    def from_window_mask(cls, label: int, score: float, window: Tuple[int, int, int, int],
                         mask: np.ndarray) -> Optional['WindowInstance']:
        """From a full-window mask; None when the mask is empty."""
        rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
        if not len(rows):
            return None
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        y, x = window[:2]
        return cls(int(label), float(score), tuple(window), (y + r0, x + c0, y + r1, x + c1),
                   np.ascontiguousarray(mask[r0:r1, c0:c1]))

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class SceneInstance:
    """A thing of the scene after joining; ``members`` counts the window predictions joined."""
    label: int
    score: float
    box: Tuple[int, int, int, int]
    mask: np.ndarray
    members: int = 1

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def intersect(a: Tuple[int, ...], b: Tuple[int, ...]) -> Optional[Tuple[int, int, int, int]]:
    y0, x0, y1, x1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (y0, x0, y1, x1) if y0 < y1 and x0 < x1 else None


def crop(inst, region: Tuple[int, int, int, int]) -> np.ndarray:
    """The instance mask over ``region`` (zeros where its box does not reach)."""
    out = np.zeros((region[2] - region[0], region[3] - region[1]), bool)
    inter = intersect(inst.box, region)
    if inter is not None:
        y0, x0, y1, x1 = inter
        out[y0 - region[0]:y1 - region[0], x0 - region[1]:x1 - region[1]] = \
            inst.mask[y0 - inst.box[0]:y1 - inst.box[0], x0 - inst.box[1]:x1 - inst.box[1]]
    return out


def suppress_duplicates(instances: Sequence[WindowInstance],
                        iou_thr: float = 0.5) -> List[WindowInstance]:
    """Within one window: keep the highest-scoring of instances whose masks overlap by IoU >=
    ``iou_thr`` (Mask2Former may give one query under several labels)."""
    kept: List[WindowInstance] = []
    for inst in sorted(instances, key=lambda i: -i.score):
        duplicate = False
        for other in kept:
            inter = intersect(inst.box, other.box)
            if inter is None:
                continue
            both = int((crop(inst, inter) & crop(other, inter)).sum())
            if both / max(inst.area + other.area - both, 1) >= iou_thr:
                duplicate = True
                break
        if not duplicate:
            kept.append(inst)
    return kept


def _same_object(a: WindowInstance, b: WindowInstance, iou_thr: float) -> bool:
    """Same label and mask IoU >= ``iou_thr`` inside the region both windows saw."""
    if a.label != b.label or a.window == b.window or intersect(a.box, b.box) is None:
        return False
    shared = intersect(a.window, b.window)
    if shared is None:
        return False
    ma, mb = crop(a, shared), crop(b, shared)
    inter = int((ma & mb).sum())
    union = int((ma | mb).sum())
    return union > 0 and inter / union >= iou_thr


def join_instances(instances: Sequence[WindowInstance], grid_weights: np.ndarray,
                   iou_thr: float = 0.5) -> List[SceneInstance]:
    """Join window predictions of one object cut by window borders into one scene instance.

    Two predictions from overlapping windows are the same object when they have the same label
    and their masks agree (IoU >= ``iou_thr``) inside the region both windows saw; groups are
    the connected components of that relation. A joined mask takes each pixel from the member
    whose window is most central there (``grid_weights``: the per-window blending weights), its
    score is the members' best.
    """
    n = len(instances)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    by_window: Dict[Tuple[int, ...], List[int]] = {}
    for i, inst in enumerate(instances):
        by_window.setdefault(inst.window, []).append(i)
    windows = list(by_window)
    for wi, wa in enumerate(windows):
        for wb in windows[wi + 1:]:
            if intersect(wa, wb) is None:
                continue
            for i in by_window[wa]:
                for j in by_window[wb]:
                    if find(i) != find(j) and _same_object(instances[i], instances[j], iou_thr):
                        parent[find(i)] = find(j)
    groups: Dict[int, List[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    joined = []
    for members in groups.values():
        insts = [instances[i] for i in members]
        if len(insts) == 1:
            only = insts[0]
            joined.append(SceneInstance(only.label, only.score, only.box, only.mask))
            continue
        box = (min(i.box[0] for i in insts), min(i.box[1] for i in insts),
               max(i.box[2] for i in insts), max(i.box[3] for i in insts))
        best = np.zeros((box[2] - box[0], box[3] - box[1]), np.float32)
        mask = np.zeros(best.shape, bool)
        for inst in insts:
            region = intersect(inst.window, box)
            wy, wx = region[0] - inst.window[0], region[1] - inst.window[1]
            weight = grid_weights[wy:wy + region[2] - region[0], wx:wx + region[3] - region[1]]
            sl = (slice(region[0] - box[0], region[2] - box[0]),
                  slice(region[1] - box[1], region[3] - box[1]))
            better = weight > best[sl]
            best[sl] = np.where(better, weight, best[sl])
            mask[sl] = np.where(better, crop(inst, region), mask[sl])
        if mask.any():
            joined.append(SceneInstance(insts[0].label, max(i.score for i in insts), box, mask,
                                        members=len(insts)))
    return joined
