"""Distances between real and generated samples: marginal and multivariate.

1-D: exact Wasserstein-1 and Kolmogorov-Smirnov between empirical distributions. Multivariate:
energy distance and sliced W1 (FPD and KPD: ``physics_distances``; the classifier two-sample test:
``classifier``). Array functions take (N,) or (N, D) arrays; the metric entries take
``real``/``fake`` property dicts and return flat dicts of floats.
"""

from __future__ import annotations

import hashlib

import numpy as np

from gentwin.metrics.moments import Properties, stack_properties


def as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N,) or (N, D) array, got shape {x.shape}")
    return x


def as_1d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("expected a non-empty sample")
    return a


def _ecdfs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled sorted values t (K,) and both empirical CDFs evaluated at t (right-continuous)."""
    a, b = np.sort(as_1d(a)), np.sort(as_1d(b))
    t = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, t, side="right") / a.size
    fb = np.searchsorted(b, t, side="right") / b.size
    return t, fa, fb


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two 1-D empirical distributions.

    ``W1 = integral |F_a(t) - F_b(t)| dt``, evaluated exactly on the piecewise-constant empirical
    CDFs (no binning); the samples may have different sizes.

    Args:
        a: first sample, shape (N,).
        b: second sample, shape (M,).

    Returns:
        W1 in the units of the data.

    References:
        S. S. Vallender, Theory Probab. Appl. 18 (1974) 784 (W1 as the L1 distance of the CDFs).
    """
    t, fa, fb = _ecdfs(a, b)
    return float(np.sum(np.abs(fa[:-1] - fb[:-1]) * np.diff(t)))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sample Kolmogorov-Smirnov statistic ``sup_t |F_a(t) - F_b(t)|``.

    The supremum of the difference of two step functions is attained at a data point, so it is
    evaluated exactly at the pooled sample (ties handled by the right-continuous CDFs).

    Args:
        a: first sample, shape (N,).
        b: second sample, shape (M,).

    Returns:
        The statistic, in [0, 1]; NaN if any value is not finite.
    """
    t, fa, fb = _ecdfs(a, b)
    if not np.isfinite(t).all():
        return float("nan")
    return float(np.max(np.abs(fa - fb)))


def _mean_distance(x: np.ndarray, y: np.ndarray, chunk: int = 1 << 22) -> float:
    """Mean Euclidean distance over all (N x M) pairs, in row blocks of about ``chunk`` numbers.

    Direct differences rather than the Gram expansion, so the zero distances are exactly zero.
    """
    n, m, d = x.shape[0], y.shape[0], x.shape[1]
    rows = max(1, chunk // (m * d))
    total = 0.0
    for s in range(0, n, rows):
        diff = x[s : s + rows, None, :] - y[None, :, :]
        dist = np.abs(diff[..., 0]) if d == 1 else np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        total += float(dist.sum())
    return total / (n * m)


def _subsample(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return x if x.shape[0] <= k else x[rng.choice(x.shape[0], size=k, replace=False)]


def energy_distance(x: np.ndarray, y: np.ndarray, max_samples: int = 2000, seed: int = 0) -> float:
    """Squared energy distance ``E = 2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (V-statistic).

    All three expectations are plain means over all pairs, the i = j zero terms included
    (V-statistic), so E >= 0, E = 0 for identical samples, and in 1-D E equals exactly
    ``2 * integral (F_x - F_y)^2 dt`` for the empirical CDFs (Szekely & Rizzo). This is the square
    of what ``scipy.stats.energy_distance`` returns. Samples larger than ``max_samples`` are
    subsampled without replacement, which keeps the cost at O(max_samples^2 D).

    Args:
        x: first sample, shape (N,) or (N, D).
        y: second sample, shape (M,) or (M, D).
        max_samples: subsample each sample to at most this many points.
        seed: seed of the subsampling.

    Returns:
        E in the units of the data.

    References:
        G. J. Szekely and M. L. Rizzo, J. Stat. Plan. Inference 143 (2013) 1249.
    """
    x, y = as_2d(x), as_2d(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: {x.shape} vs {y.shape}")
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    return float(2.0 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y))


def sliced_w1(x: np.ndarray, y: np.ndarray, n_projections: int = 128, seed: int = 0) -> float:
    """Sliced Wasserstein-1: exact 1-D W1 of random projections, averaged over directions.

    Directions are uniform on the unit sphere (normalised standard normals drawn from ``seed``).

    Args:
        x: first sample, shape (N,) or (N, D).
        y: second sample, shape (M,) or (M, D).
        n_projections: number of random directions.
        seed: seed of the directions.

    Returns:
        The mean of ``wasserstein1(x @ theta, y @ theta)`` over the directions theta.

    References:
        N. Bonneel et al., J. Math. Imaging Vis. 51 (2015) 22.
    """
    x, y = as_2d(x), as_2d(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: {x.shape} vs {y.shape}")
    theta = np.random.default_rng(seed).standard_normal((n_projections, x.shape[1]))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    px, py = x @ theta.T, y @ theta.T
    return float(np.mean([wasserstein1(px[:, k], py[:, k]) for k in range(n_projections)]))


def standardized(real: Properties, fake: Properties) -> tuple[np.ndarray, np.ndarray]:
    """Stack both property dicts and standardize them by the real mean and std (std 0 -> 1)."""
    keys = list(real)
    x, y = stack_properties(real, keys), stack_properties(fake, keys)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std, (y - mean) / std


def w1_marginals(
    real: Properties, fake: Properties, cond: Properties | None = None, scale: str = "none"
) -> dict[str, float]:
    """Metric entry: exact W1 of every property's marginal.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        scale: ``"none"`` for W1 in data units, ``"std"`` to divide by the real std (ddof=0;
            left undivided where that std is 0), which makes properties of different units comparable.

    Returns:
        ``{p: W1}`` for every property p.
    """
    if scale not in ("none", "std"):
        raise ValueError(f"scale must be 'none' or 'std', got {scale!r}")
    out = {}
    for p in real:
        w = wasserstein1(real[p], fake[p])
        s = float(np.std(real[p])) if scale == "std" else 0.0
        out[p] = w / s if s > 0 else w
    return out


def ks_marginals(real: Properties, fake: Properties, cond: Properties | None = None) -> dict[str, float]:
    """Metric entry: exact two-sample KS statistic of every property's marginal.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.

    Returns:
        ``{p: KS}`` for every property p.
    """
    return {p: ks_statistic(real[p], fake[p]) for p in real}


_FLOORS: dict[tuple, list[dict[str, float]]] = {}


def multivariate(
    real: Properties,
    fake: Properties,
    cond: Properties | None = None,
    seed: int = 0,
    max_samples: int = 2000,
    n_projections: int = 128,
    standardize: bool = True,
    floor_splits: int = 0,
) -> dict[str, float]:
    """Metric entry: energy distance and sliced W1 of the joint distribution of all properties.

    With ``floor_splits`` > 0 each value comes beside its real-vs-real floor, as in
    :func:`gentwin.metrics.floors.scorecard`: the real sample is split at random into halves A and B,
    the value compares A with as many generated samples as B has, the floor compares A with B (the
    same sizes, so a value near its floor is as close to A as a second real sample). Both are the
    mean over ``floor_splits`` random splits; ``<key>_floor_std`` is the spread (ddof 1) of one
    split's floor, the scale of a real-vs-real value's noise.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        seed: seed of the subsampling, of the splits and of the projections.
        max_samples: subsample size of ``energy_distance``.
        n_projections: directions of ``sliced_w1``.
        standardize: standardize every property by the real mean and std first, so that properties
            in different units weigh alike.
        floor_splits: 0: one comparison of all samples, no floor; k: k random halvings (see above).

    Returns:
        ``{"energy": energy_distance, "sliced_w1": sliced_w1}``, with ``floor_splits`` also
        ``energy_floor``, ``energy_floor_std``, ``sliced_w1_floor`` and ``sliced_w1_floor_std``.
    """
    if standardize:
        x, y = standardized(real, fake)
    else:
        x, y = stack_properties(real), stack_properties(fake, list(real))

    def both(a, b, s):
        return {"energy": energy_distance(a, b, max_samples=max_samples, seed=s),
                "sliced_w1": sliced_w1(a, b, n_projections=n_projections, seed=s)}

    if floor_splits <= 0:
        return both(x, y, seed)
    if len(x) < 4:
        raise ValueError(f"a floor needs at least 4 real samples, got {len(x)}")
    rng = np.random.default_rng(seed)
    # The floors depend only on the real sample and the seeds: every validation of a run reuses them.
    key = (hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest(), x.shape, len(y), seed, max_samples,
           n_projections, int(floor_splits))
    values, floors = [], _FLOORS.get(key)
    computed = []
    for s in range(int(floor_splits)):
        perm = rng.permutation(len(x))
        a, b = x[perm[: len(x) // 2]], x[perm[len(x) // 2 :]]
        g = y[rng.permutation(len(y))[: len(b)]]
        values.append(both(a, g, seed + s))
        if floors is None:
            computed.append(both(a, b, seed + s))
    if floors is None:
        floors = _FLOORS[key] = computed
        while len(_FLOORS) > 16:
            _FLOORS.pop(next(iter(_FLOORS)))
    out = {}
    for k in ("energy", "sliced_w1"):
        f = np.array([d[k] for d in floors])
        out[k] = float(np.mean([d[k] for d in values]))
        out[f"{k}_floor"] = float(f.mean())
        out[f"{k}_floor_std"] = float(f.std(ddof=1)) if f.size > 1 else float("nan")
    return out
