"""The eight key properties of leaves and of leaf images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gentwin.domains.leaves.geometry import HALF_LEAF_EXTENT, LEAF_PROPERTIES, Extent, Leaf
from gentwin.domains.leaves.postprocess import postprocess_all


def leaf_properties(leaves: Sequence[Leaf | None]) -> dict[str, np.ndarray]:
    """The eight key properties of van Beek 2023 (leaf digital twin) (Fig. 9) per leaf, in cm and cm^2.

    Args:
        leaves: leaves or None (a failed post-processing), length N.

    Returns:
        ``LEAF_PROPERTIES`` -> (N,) float arrays (NaN where the entry is None), plus ``valid``:
        (N,) 1.0 for a leaf, 0.0 for None.
    """
    out = {k: np.full(len(leaves), np.nan) for k in LEAF_PROPERTIES}
    out["valid"] = np.zeros(len(leaves))
    for i, leaf in enumerate(leaves):
        if leaf is None:
            continue
        o = leaf.outline
        xmin, ymin, xmax, ymax = o.bounds
        hole_area = sum(h.intersection(o).area for h in leaf.holes)
        veins = leaf.all_veins
        values = {
            "area": o.area,
            "height": ymax - ymin,
            "width": xmax - xmin,
            "n_holes": len(leaf.holes),
            "hole_area": hole_area,
            "n_veins": len(veins),
            "vein_length": sum(v.length for v in veins),
            "perimeter": o.exterior.length,
        }
        for k, val in values.items():
            out[k][i] = val
        out["valid"][i] = 1.0
    return out


def image_properties(
    images: np.ndarray, threshold: float = 0.5, extent: Extent = HALF_LEAF_EXTENT, **kw
) -> dict[str, np.ndarray]:
    """``postprocess`` every image, then ``leaf_properties``.

    Args:
        images: shape (N, 2, H, H) in [0, 1].
        threshold: passed to ``postprocess``.
        extent: passed to ``postprocess``.
        **kw: further ``postprocess`` options.

    Returns:
        ``leaf_properties`` of the post-processed leaves, ``valid`` marking images that gave one
        (by default only images passing the validity criteria of ``postprocess`` do).
    """
    return leaf_properties(postprocess_all(images, threshold, extent, **kw))


# --------------------------------------------------------------------------------------------
# GeoJSON / WKT
# --------------------------------------------------------------------------------------------
