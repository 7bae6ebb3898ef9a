"""Fréchet and kernel physics distances (FPD, KPD) between real and generated features, with
JetNet's conventions.
"""

from __future__ import annotations

import numpy as np

from gentwin.metrics.distances import as_2d, standardized
from gentwin.metrics.moments import Properties


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet (2-Wasserstein squared) distance between two Gaussians.

    ``d^2 = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``. The trace term uses the
    symmetric product ``S1^1/2 S2 S1^1/2``, whose eigenvalues are those of ``S1 S2`` but which
    ``eigh`` handles stably (no complex parts, tiny negative eigenvalues clipped to 0).

    Args:
        mu1: mean of the first Gaussian, shape (D,).
        sigma1: its covariance, shape (D, D), symmetric PSD.
        mu2: mean of the second Gaussian, shape (D,).
        sigma2: its covariance, shape (D, D), symmetric PSD.

    Returns:
        The squared distance (>= 0 up to round-off).

    References:
        D. C. Dowson and B. V. Landau, J. Multivar. Anal. 12 (1982) 450; M. Heusel et al.,
        NeurIPS 2017 (FID); R. Kansal et al., Phys. Rev. D 107 (2023) 076017 (FPD).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    r1 = _sqrtm_psd(s1)
    product = r1 @ s2 @ r1
    w = np.linalg.eigvalsh((product + product.T) / 2)
    tr_covmean = float(np.sum(np.sqrt(np.clip(w, 0.0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def frechet_from_samples(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two samples.

    Means and unbiased covariances (``ddof=1``, as FID and JetNet's FPD use ``np.cov``). JetNet
    further extrapolates FPD to infinite sample size; this is the plain finite-sample value.

    Args:
        x: first sample, shape (N,) or (N, D), N >= 2.
        y: second sample, shape (M,) or (M, D), M >= 2.

    Returns:
        ``frechet_distance`` of the two fitted Gaussians.
    """
    x, y = as_2d(x), as_2d(y)
    cov = lambda a: np.atleast_2d(np.cov(a, rowvar=False))
    return frechet_distance(x.mean(axis=0), cov(x), y.mean(axis=0), cov(y))


def _power(base: np.ndarray, degree: int) -> np.ndarray:
    """``base ** degree`` for an integer degree by repeated multiplication, in place: several times
    faster than numpy's general power on the (N x N) kernel matrices."""
    if degree != int(degree) or degree < 1:
        return base**degree
    out = base.copy()
    for _ in range(int(degree) - 1):
        out *= base
    return out


def mmd2_unbiased(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> float:
    """Unbiased MMD^2 estimate with the polynomial kernel ``k(a, b) = (gamma a.b + coef0)^degree``.

    ``MMD^2 = sum_{i!=j} k(x_i, x_j) / (n(n-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1)) - 2 mean k(x_i, y_j)``;
    it can be slightly negative when the distributions agree.

    Args:
        x: first sample, shape (N,) or (N, D), N >= 2.
        y: second sample, shape (M,) or (M, D), M >= 2.
        degree: polynomial degree (3 in KID, 4 in JetNet's KPD).
        gamma: scale of the dot product; 1 / D if None.
        coef0: additive constant.

    Returns:
        The estimate.

    References:
        A. Gretton et al., JMLR 13 (2012) 723, eq. 3.
    """
    x, y = as_2d(x), as_2d(y)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least 2 samples on each side")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k = lambda a, b: _power(g * (a @ b.T) + coef0, degree)
    kxx, kyy = k(x, x), k(y, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2.0 * k(x, y).mean()
    )


def kernel_distance(
    x: np.ndarray,
    y: np.ndarray,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    n_subsets: int = 10,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel distance (KID / KPD): unbiased polynomial-kernel MMD^2 averaged over random subsets.

    Each subset draws ``min(subset_size, N, M)`` points from each sample with replacement (as
    JetNet's ``kpd`` does, which keeps the estimate unbiased for the two empirical distributions),
    and ``mmd2_unbiased`` is evaluated on it. Defaults follow KID (cubic kernel, mean and std);
    JetNet's KPD uses ``degree=4`` and reports median and half the 16-84 % interquantile range.

    Args:
        x: real sample, shape (N,) or (N, D), N >= 2.
        y: generated sample, shape (M,) or (M, D), M >= 2.
        degree: polynomial degree.
        gamma: scale of the dot product; 1 / D if None.
        coef0: additive constant.
        n_subsets: number of subsets.
        subset_size: points per subset and sample.
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` of the per-subset estimates (population std, ``ddof=0``).

    References:
        M. Binkowski et al., ICLR 2018 (KID); R. Kansal et al., Phys. Rev. D 107 (2023) 076017 (KPD).
    """
    x, y = as_2d(x), as_2d(y)
    rng = np.random.default_rng(seed)
    k = min(subset_size, x.shape[0], y.shape[0])
    values = [
        mmd2_unbiased(x[rng.integers(0, x.shape[0], k)], y[rng.integers(0, y.shape[0], k)], degree, gamma, coef0)
        for _ in range(n_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))




def fpd_kpd(
    real: Properties,
    fake: Properties,
    cond: Properties | None = None,
    seed: int = 0,
    degree: int = 3,
    n_subsets: int = 10,
    subset_size: int = 1000,
) -> dict[str, float]:
    """Metric entry: Frechet and kernel distances of the joint distribution of all properties.

    The properties are standardized by the real mean and std (ddof=0; std 0 -> 1) before both, so
    the values do not depend on units; JetNet similarly rescales, by the real max |x| per feature.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        seed: seed of the KPD subsets.
        degree: polynomial degree of the KPD kernel.
        n_subsets: KPD subsets.
        subset_size: KPD points per subset.

    Returns:
        ``{"fpd": frechet_from_samples, "kpd": kernel_distance mean, "kpd_err": its std}``.
    """
    x, y = standardized(real, fake)
    kpd, kpd_err = kernel_distance(x, y, degree=degree, n_subsets=n_subsets, subset_size=subset_size, seed=seed)
    return {"fpd": frechet_from_samples(x, y), "kpd": kpd, "kpd_err": kpd_err}
