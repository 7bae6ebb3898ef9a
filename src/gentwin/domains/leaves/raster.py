"""Leaves to 2-channel (leaf, vein) images over a fixed window (``rasterize``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import shapely

from gentwin.domains.leaves.geometry import HALF_LEAF_EXTENT, Extent, Leaf


def pixel_size(size: int, extent: Extent = HALF_LEAF_EXTENT) -> float:
    """Side of one pixel in cm for a ``size`` x ``size`` image of ``extent``."""
    xmin, ymin, xmax, ymax = extent
    if not np.isclose(xmax - xmin, ymax - ymin):
        raise ValueError(f"extent must be square, got {extent}")
    return (xmax - xmin) / size


def _pixel_centres(size: int, extent: Extent, supersample: int = 1) -> tuple[np.ndarray, np.ndarray]:
    p = pixel_size(size, extent)
    k = size * supersample
    t = (np.arange(k) + 0.5) / supersample
    x = extent[0] + t * p
    y = extent[3] - t * p
    return np.meshgrid(x, y)  # (k, k) each, row 0 at the top


def rasterize(
    leaves: Sequence[Leaf],
    size: int = 64,
    extent: Extent = HALF_LEAF_EXTENT,
    vein_width: float = 1.5,
    supersample: int = 1,
) -> np.ndarray:
    """Rasterise leaves to 2-channel images (leaf, vein), van Beek 2023 (leaf digital twin) §3.2.

    A pixel is leaf when its centre lies in the tissue (outline minus holes), vein when its centre
    lies within ``vein_width / 2`` pixels of a vein and in the tissue. With ``supersample = s > 1``
    each pixel holds the covered fraction of its ``s x s`` sub-pixel centres instead of 0/1.

    Args:
        leaves: leaves in cm (half-leaves for the default ``extent``).
        size: image side in pixels (64 by default; 128 or 256 in GPU presets).
        extent: window ``(xmin, ymin, xmax, ymax)`` in cm mapped onto the image (square).
        vein_width: drawn vein width in pixels (independent of ``size``).
        supersample: sub-pixels per side for anti-aliasing; 1 gives the binary images of the report.

    Returns:
        Array of shape (N, 2, size, size), float32 in [0, 1].
    """
    x, y = _pixel_centres(size, extent, supersample)
    half_w = vein_width / 2 * pixel_size(size, extent)
    out = np.zeros((len(leaves), 2, size, size), dtype=np.float32)
    for i, leaf in enumerate(leaves):
        tissue = leaf.tissue
        shapely.prepare(tissue)
        leaf_mask = shapely.contains_xy(tissue, x, y)
        vein_mask = np.zeros_like(leaf_mask)
        lines = leaf.all_veins
        if lines:
            band = shapely.union_all([v.buffer(half_w) for v in lines])
            shapely.prepare(band)
            vein_mask = shapely.contains_xy(band, x, y) & leaf_mask
        for c, m in enumerate((leaf_mask, vein_mask)):
            if supersample > 1:
                m = m.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
            out[i, c] = m
    return out


# --------------------------------------------------------------------------------------------
# Post-processing: image -> geometry
# --------------------------------------------------------------------------------------------
