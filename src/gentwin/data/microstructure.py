"""Synthetic grain microstructures (seed 001): Voronoi grains as 64x64 RGB images.

Seed 001 trains a convolutional VAE on 1000 RGB 64x64 micrographs of grains of varying size and
shape. Its images are not public, so ``simulate_microstructures`` makes look-alikes: a Voronoi
(optionally Laguerre) tessellation of random seed points, each grain painted one colour as an
orientation map would (a random crystal direction shown as RGB, always bright), and the grain
boundaries drawn dark. The window is **not periodic**: it is a cut-out of a larger polycrystal, so
grains at the border are truncated as in a micrograph, and every seed lies inside the window.

``microstructure_properties`` reads the statistics back from any image (simulated or generated):
boundary pixels are the dark ones, grains the 4-connected regions between them. All lengths and
areas are in pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def _orientation_colours(rng: np.random.Generator, k: int) -> np.ndarray:
    """(k, 3) colours of random crystal directions: |v| / max|v| for v uniform on the sphere."""
    v = np.abs(rng.standard_normal((k, 3)))
    return v / v.max(axis=1, keepdims=True)


def simulate_microstructures(
    n: int,
    rng: np.random.Generator,
    size: int = 64,
    grains: Sequence[float] = (40.0, 10.0),
    size_spread: float = 0.0,
    boundary_width: float = 1.0,
    boundary_value: float = 0.05,
    noise: float = 0.0,
) -> np.ndarray:
    """Simulate grain micrographs as RGB images.

    Per image the number of grains is ``round(Normal(*grains))`` (at least 2), seeds are uniform in
    the window, and pixel centres go to the seed of least power ``|x - s_i|^2 - w_i`` with weights
    ``w_i = size_spread * U(0, 1) * size^2 / n_grains`` (``size_spread = 0``: a plain Voronoi
    tessellation; larger values widen the grain-size distribution, and may swallow a few cells). A
    pixel whose centre lies within ``boundary_width / 2`` of its grain's border (the exact distance
    to the nearest bisector, so the width is the same at every angle) is boundary.

    Args:
        n: number of images.
        rng: random generator (the only source of randomness).
        size: image side in pixels.
        grains: (mean, std) of the number of seed points per image.
        size_spread: weight scale of the Laguerre tessellation (0 for Voronoi).
        boundary_width: drawn boundary width in pixels (0 for none).
        boundary_value: grey level of boundary pixels, below ``microstructure_properties``' threshold.
        noise: std of Gaussian pixel noise added before clipping to [0, 1].

    Returns:
        Array of shape (N, 3, size, size), float32 in [0, 1].
    """
    if n < 0 or size < 2:
        raise ValueError(f"need n >= 0 and size >= 2, got n={n}, size={size}")
    if boundary_width < 0 or size_spread < 0 or noise < 0:
        raise ValueError("boundary_width, size_spread and noise must be >= 0")
    t = np.arange(size) + 0.5
    px = np.stack(np.meshgrid(t, t), axis=-1).reshape(-1, 2)  # (P, 2) pixel centres as (x, y)
    rows = np.arange(len(px))
    out = np.empty((n, 3, size, size), dtype=np.float32)
    for i in range(n):
        k = max(2, round(float(rng.normal(*grains))))
        seeds = rng.uniform(0.0, size, (k, 2))
        weights = size_spread * rng.uniform(0.0, 1.0, k) * size**2 / k
        colours = _orientation_colours(rng, k)
        # power minus the common |x|^2, which cancels in every comparison and difference below
        power = (seeds**2).sum(1) - weights - 2.0 * px @ seeds.T  # (P, k)
        own = power.argmin(axis=1)
        # distance to the own cell's border = the nearest of the bisectors with all other seeds
        sep = np.linalg.norm(seeds[:, None] - seeds[None], axis=-1)
        np.fill_diagonal(sep, np.inf)
        to_bisector = (power - power[rows, own][:, None]) / (2.0 * sep[own])  # own column: 0 / inf
        to_bisector[rows, own] = np.inf
        img = colours[own]
        img[to_bisector.min(axis=1) < boundary_width / 2] = boundary_value
        if noise > 0:
            img = img + rng.normal(0.0, noise, img.shape)
        out[i] = np.clip(img, 0.0, 1.0).reshape(size, size, 3).transpose(2, 0, 1)
    return out


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
