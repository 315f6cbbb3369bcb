"""The global grid of overlapping windows over a scene and its centre-weighted blending."""
from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np


def window_starts(length: int, size: int, overlap: int) -> List[int]:
    """Start offsets of windows of ``size`` covering ``[0, length)`` with at least ``overlap``
    pixels shared by neighbours; the last window is aligned to the end."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f'window size must be > 0 and 0 <= overlap < size, got size={size}, '
                         f'overlap={overlap}')
    if length <= size:
        return [0]
    stride = size - overlap
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def centre_weights(height: int, width: int) -> np.ndarray:
    """(H, W) blending weights: a separable tent, 1 at the window centre, small (not 0) at its
    borders, so overlapping windows are blended towards their centres."""

    def tent(n: int) -> np.ndarray:
        i = np.arange(n, dtype=np.float32) + 0.5
        return np.clip(np.minimum(i, n - i) / (n / 2.0), 1e-3, 1.0)

    return np.outer(tent(height), tent(width)).astype(np.float32)


@dataclass
class WindowGrid:
    """One global grid of windows over a scene (``ys``/``xs`` start offsets)."""
    height: int
    width: int
    size: int
    overlap: int
    ys: List[int] = field(init=False)
    xs: List[int] = field(init=False)

    def __post_init__(self) -> None:
        self.ys = window_starts(self.height, self.size, self.overlap)
        self.xs = window_starts(self.width, self.size, self.overlap)
        self.win_h = min(self.size, self.height)
        self.win_w = min(self.size, self.width)
        self.weights = centre_weights(self.win_h, self.win_w)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    def box(self, row: int, col: int) -> Tuple[int, int, int, int]:
        """(y0, x0, y1, x1) of window (row, col)."""
        return self.ys[row], self.xs[col], self.ys[row] + self.win_h, self.xs[col] + self.win_w

    def touching(self, y0: int, x0: int, y1: int, x1: int) -> List[Tuple[int, int]]:
        """Windows intersecting the region [y0, y1) x [x0, x1)."""
        rows = [r for r, y in enumerate(self.ys) if y < y1 and y + self.win_h > y0]
        cols = [c for c, x in enumerate(self.xs) if x < x1 and x + self.win_w > x0]
        return [(r, c) for r in rows for c in cols]
