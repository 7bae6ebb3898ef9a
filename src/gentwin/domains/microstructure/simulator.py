"""Synthetic grain micrographs: Voronoi grains as RGB images (``simulate_microstructures``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
