"""Helpers shared by the paper modules."""
import math
from typing import Tuple


def pooled_grid(height: int, width: int, max_points: int) -> Tuple[int, int]:
    """Largest grid (gh, gw) with gh·gw ≤ ``max_points`` keeping the aspect ratio of (H, W).

    Maps that already have at most ``max_points`` points are left as they are. Bounds the
    affinity of TMAA and the keys/values of TMSF's cross-attention whatever the input size.
    """
    if height * width <= max_points:
        return height, width
    scale = math.sqrt(max_points / (height * width))
    grid_h = min(height, max_points, max(1, math.floor(height * scale)))
    grid_w = max(1, min(width, math.floor(width * scale), max_points // grid_h))
    return grid_h, grid_w
