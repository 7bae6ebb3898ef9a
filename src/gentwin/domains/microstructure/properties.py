"""Grain statistics read back from any micrograph, simulated or generated."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MICROSTRUCTURE_PROPERTIES = (
    "grain_count",
    "mean_grain_area",
    "boundary_fraction",
    "color_mean_r",
    "color_mean_g",
    "color_mean_b",
    "color_std_r",
    "color_std_g",
    "color_std_b",
)




def microstructure_properties(
    images: np.ndarray, boundary_threshold: float = 0.3, min_grain_pixels: int = 4
) -> dict[str, np.ndarray]:
    """Grain statistics of RGB micrographs.

    A pixel is boundary when its brightest channel is below ``boundary_threshold`` (grains are
    painted bright, boundaries dark); grains are the 4-connected regions of the other pixels with
    at least ``min_grain_pixels`` pixels (smaller specks are noise).

    Args:
        images: shape (N, 3, H, W), values in [0, 1].
        boundary_threshold: brightness below which a pixel is boundary.
        min_grain_pixels: smallest region counted as a grain.

    Returns:
        ``MICROSTRUCTURE_PROPERTIES`` -> (N,) float arrays: ``grain_count``, ``mean_grain_area``
        (pixels; NaN without grains), ``boundary_fraction`` (share of boundary pixels) and the mean
        and std of each colour channel over the grain pixels (NaN without grains).
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected images of shape (N, 3, H, W), got {images.shape}")
    out = {k: np.full(len(images), np.nan) for k in MICROSTRUCTURE_PROPERTIES}
    for i, img in enumerate(images):
        boundary = img.max(axis=0) < boundary_threshold
        labels, k = ndimage.label(~boundary)
        sizes = np.bincount(labels.ravel(), minlength=k + 1)[1:]
        grains = sizes[sizes >= min_grain_pixels]
        out["grain_count"][i] = grains.size
        out["boundary_fraction"][i] = boundary.mean()
        if grains.size:
            out["mean_grain_area"][i] = grains.mean()
            inside = (labels > 0) & (sizes >= min_grain_pixels)[np.maximum(labels - 1, 0)]
            pixels = img[:, inside]
            for c, name in enumerate("rgb"):
                out[f"color_mean_{name}"][i] = pixels[c].mean()
                out[f"color_std_{name}"][i] = pixels[c].std()
    return out
