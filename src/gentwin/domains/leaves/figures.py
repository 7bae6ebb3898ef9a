"""Leaf images drawn as a scan would show them: the leaf (channel 0) green on white, its veins
(channel 1) brown."""

from __future__ import annotations

import numpy as np

from gentwin.plots.images import clipped

BACKGROUND = np.array([1.0, 1.0, 1.0])
LEAF = np.array([0.35, 0.65, 0.25])
VEIN = np.array([0.45, 0.25, 0.1])


def leaf_rgb(images: np.ndarray) -> np.ndarray:
    """Leaf images ``(N, 2, H, W)`` in [0, 1] as RGB ``(N, H, W, 3)``."""
    x = clipped(images)
    leaf, vein = x[:, 0, ..., None], x[:, 1, ..., None]
    return BACKGROUND * (1 - leaf) + leaf * ((1 - vein) * LEAF + vein * VEIN)
