"""Key properties of digit images: ink, size, strokes and loops."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from gentwin.data.images import Properties

DIGIT_PROPERTIES = ("ink", "on_fraction", "centroid_x", "centroid_y", "width", "height", "strokes", "loops")


# --------------------------------------------------------------------------------------------
# Transform
# --------------------------------------------------------------------------------------------




def digit_properties(images: np.ndarray, threshold: float = 0.5) -> Properties:
    """Key properties of grey digit images: amount, position, extent and topology of the ink.

    Args:
        images: ``(N, 1, H, W)`` (or ``(N, H, W)``) in [0, 1], ink bright.
        threshold: Level above which a pixel is ink for ``on_fraction``, ``strokes`` and ``loops``.

    Returns:
        (N,) arrays: ``ink`` (mean intensity), ``on_fraction`` (share of ink pixels),
        ``centroid_x``/``centroid_y`` (intensity-weighted centre as a fraction of the side, x to the
        right, y down), ``width``/``height`` (intensity-weighted std along x/y, same units; NaN for
        a blank image), ``strokes`` (8-connected ink regions) and ``loops`` (4-connected background
        regions not touching the border: 1 for a 0, 2 for an 8).
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 4:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected images (N, 1, H, W) or (N, H, W), got {np.shape(images)}")
    x = np.clip(np.nan_to_num(x), 0.0, 1.0)
    n, h, w = x.shape
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w
    mass = x.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        px, py = x.sum(axis=1) / mass[:, None], x.sum(axis=2) / mass[:, None]  # marginals along x, y
        cx, cy = px @ xs, py @ ys
        sx = np.sqrt(np.clip(px @ xs**2 - cx**2, 0, None))
        sy = np.sqrt(np.clip(py @ ys**2 - cy**2, 0, None))
    on = x > threshold
    strokes, loops = np.zeros(n), np.zeros(n)
    eight = np.ones((3, 3), dtype=bool)
    for i in range(n):
        strokes[i] = ndimage.label(on[i], structure=eight)[1]
        bg, k = ndimage.label(np.pad(~on[i], 1, constant_values=True))
        loops[i] = k - 1  # the padded border joins every outside region into one
    return {"ink": x.mean(axis=(1, 2)), "on_fraction": on.mean(axis=(1, 2)), "centroid_x": cx,
            "centroid_y": cy, "width": sx, "height": sy, "strokes": strokes, "loops": loops}
