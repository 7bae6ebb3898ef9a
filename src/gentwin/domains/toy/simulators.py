"""The toy distributions: seeded ``simulate(n, rng, **params) -> (n, D)`` functions."""

from __future__ import annotations

import numpy as np

from gentwin.data.base import ConfigError


def u_shape(n: int, rng: np.random.Generator, rmin: float = -1.0, rmax: float = 1.0) -> np.ndarray:
    """``x ~ U[rmin, rmax]``, ``y = x^2`` (Calvo Ordoñez 2022 (generative ML for particle physics) Listing 1,
    ``toy_data``)."""
    if not rmin < rmax:
        raise ConfigError(f"dataset.rmin must be < dataset.rmax, got {rmin} and {rmax}")
    x = rng.uniform(rmin, rmax, n)
    return np.stack([x, x**2], axis=1)


def gaussian2d(
    n: int,
    rng: np.random.Generator,
    mean: float | list[float] = 1.0,
    var: float | list[float] = 0.5,
    corr: float = 0.0,
) -> np.ndarray:
    """2-D normal with per-axis ``mean`` and variance ``var`` and correlation ``corr``.

    ``var = 0`` gives a point mass (Calvo Ordoñez 2022 Fig. 22, "mean 1 with variance 0").
    """
    mean = np.broadcast_to(np.asarray(mean, dtype=float), (2,))
    var = np.broadcast_to(np.asarray(var, dtype=float), (2,))
    if (var < 0).any():
        raise ConfigError(f"dataset.var must be >= 0, got {var.tolist()}")
    if not -1 <= corr <= 1:
        raise ConfigError(f"dataset.corr must be in [-1, 1], got {corr}")
    sd = np.sqrt(var)
    cov = np.array([[var[0], corr * sd[0] * sd[1]], [corr * sd[0] * sd[1], var[1]]])
    # Cholesky fails on singular covariances (var 0, |corr| 1); the eigen-decomposition does not.
    w, v = np.linalg.eigh(cov)
    return mean + rng.standard_normal((n, 2)) @ (v * np.sqrt(np.clip(w, 0, None))).T


def moons(n: int, rng: np.random.Generator, noise: float = 0.1) -> np.ndarray:
    """Two interleaving half circles (as scikit-learn's ``make_moons``)."""
    n1 = n // 2
    t1, t2 = rng.uniform(0, np.pi, n1), rng.uniform(0, np.pi, n - n1)
    a = np.stack([np.cos(t1), np.sin(t1)], 1)
    b = np.stack([1 - np.cos(t2), 0.5 - np.sin(t2)], 1)
    return np.concatenate([a, b]) + noise * rng.standard_normal((n, 2))


def circles(n: int, rng: np.random.Generator, factor: float = 0.5, noise: float = 0.05) -> np.ndarray:
    """Two concentric circles of radii 1 and ``factor`` (as scikit-learn's ``make_circles``)."""
    if not 0 < factor < 1:
        raise ConfigError(f"dataset.factor must be in (0, 1), got {factor}")
    t = rng.uniform(0, 2 * np.pi, n)
    r = np.where(np.arange(n) < n // 2, 1.0, factor)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1) + noise * rng.standard_normal((n, 2))


def ring(n: int, rng: np.random.Generator, radius: float = 1.0, width: float = 0.1) -> np.ndarray:
    """A ring of ``radius`` with Gaussian radial ``width`` (Calvo Ordoñez 2022 Fig. 38)."""
    t = rng.uniform(0, 2 * np.pi, n)
    r = radius + width * rng.standard_normal(n)
    return np.stack([r * np.cos(t), r * np.sin(t)], 1)


def gaussian_mixture(
    n: int, rng: np.random.Generator, k: int = 8, radius: float = 2.0, std: float = 0.05
) -> np.ndarray:
    """``k`` equally weighted isotropic Gaussians on a circle: the usual mode-collapse check."""
    if k < 1:
        raise ConfigError(f"dataset.k must be >= 1, got {k}")
    mode = rng.integers(0, k, n)
    angle = 2 * np.pi * mode / k
    centers = radius * np.stack([np.cos(angle), np.sin(angle)], 1)
    return centers + std * rng.standard_normal((n, 2))


SIMULATORS = {f.__name__: f for f in (u_shape, gaussian2d, moons, circles, ring, gaussian_mixture)}
