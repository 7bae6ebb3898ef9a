"""Histogram chi-square between real and generated marginals (Calvo Ordoñez 2022 (generative ML for particle physics),
eq. 5.5).

Calvo Ordoñez 2022 compares two histograms with Pearson's statistic ``chi2 = sum_i (O_i - E_i)^2 / E_i``
(eq. 5.5), the real histogram giving the expected counts E and the generated one the observed
counts O (its Listing 3, ``chi_squared``). Its binning, which we keep:

- ``align_hist``: equal-width bins spanning the joint range of both samples, so generated mass
  outside the real support is counted rather than dropped;
- ``norm_hist``: a bin with no real entries (E = 0, where the term is undefined) is merged into the
  next bin that has real entries; trailing empty bins go into the last non-empty one. Bins empty in
  both samples therefore vanish too.

What Calvo Ordoñez 2022 leaves open and we fix: the generated counts are rescaled to the real sample size,
``O_i = n_fake_i * N_real / N_fake``, so unequal sample sizes compare densities; chi2 is then in
units of real counts and grows like N_real for a fixed mismatch, so compare values at equal N_real.
"""

from __future__ import annotations

import numpy as np

from gentwin.metrics.moments import Properties


def hist_edges(real: np.ndarray, fake: np.ndarray, bins: int = 20, span: str = "joint") -> np.ndarray:
    """Equal-width bin edges for comparing two 1-D samples.

    Args:
        real: reference sample, shape (N,).
        fake: generated sample, shape (M,).
        bins: number of bins.
        span: ``"joint"`` spans [min, max] of both samples (Calvo Ordoñez's (2022) ``align_hist``); ``"real"``
            spans the real sample only, which one far generated outlier cannot stretch.

    Returns:
        Edges, shape (bins + 1,). A zero-width range is widened to +-0.5 as ``np.histogram`` does.
    """
    real = np.asarray(real, dtype=np.float64).ravel()
    fake = np.asarray(fake, dtype=np.float64).ravel()
    if span == "joint":
        lo, hi = min(real.min(), fake.min()), max(real.max(), fake.max())
    elif span == "real":
        lo, hi = real.min(), real.max()
    else:
        raise ValueError(f"span must be 'joint' or 'real', got {span!r}")
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, int(bins) + 1)


def hist_chi2(
    real: np.ndarray, fake: np.ndarray, bins: int | np.ndarray = 20, span: str = "joint"
) -> tuple[float, int]:
    """Pearson chi-square of the generated histogram against the real one (Calvo Ordoñez 2022, eq. 5.5).

    ``chi2 = sum_i (O_i - E_i)^2 / E_i`` with E_i the real counts and O_i the generated counts
    rescaled to the real sample size (``O_i = n_fake_i * N / M``). Bins without real entries are
    merged into the next bin with real entries (the last one for trailing bins), as Calvo Ordoñez's (2022)
    ``norm_hist`` does. Values outside the edges are counted in the first or last bin (under- and
    overflow), so no generated sample is ever dropped.

    Args:
        real: reference sample, shape (N,), N >= 1 (the expected counts E).
        fake: generated sample, shape (M,), M >= 1 (the observed counts O).
        bins: number of equal-width bins (see ``hist_edges``), or explicit increasing edges (K + 1,).
        span: range of the equal-width bins, ``"joint"`` or ``"real"``; ignored for explicit edges.

    Returns:
        ``(chi2, n_bins)``: the statistic and the number of bins left after merging (>= 1);
        ``(nan, 0)`` if any value is not finite.

    References:
        K. Pearson, Phil. Mag. 50 (1900) 157; Calvo Ordoñez 2022, eq. 5.5 and Listing 3.
    """
    real = np.asarray(real, dtype=np.float64).ravel()
    fake = np.asarray(fake, dtype=np.float64).ravel()
    if real.size == 0 or fake.size == 0:
        raise ValueError("hist_chi2 needs non-empty samples")
    if not (np.isfinite(real).all() and np.isfinite(fake).all()):
        return float("nan"), 0
    edges = hist_edges(real, fake, bins, span) if np.ndim(bins) == 0 else np.asarray(bins, np.float64)
    clip = lambda v: np.clip(v, edges[0], edges[-1])
    expected = np.histogram(clip(real), edges)[0].astype(np.float64)
    observed = np.histogram(clip(fake), edges)[0] * (real.size / fake.size)
    filled = np.flatnonzero(expected > 0)
    # Index of the filled bin each bin is merged into: the next filled one, else the last filled one.
    target = np.minimum(np.searchsorted(filled, np.arange(expected.size)), filled.size - 1)
    e = np.bincount(target, weights=expected, minlength=filled.size)
    o = np.bincount(target, weights=observed, minlength=filled.size)
    return float(np.sum((o - e) ** 2 / e)), int(filled.size)


def histogram_chi2(
    real: Properties, fake: Properties, cond: Properties | None = None, bins: int = 20, span: str = "joint"
) -> dict[str, float]:
    """Metric entry: ``hist_chi2`` of every property's marginal.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        bins: number of equal-width bins per property.
        span: ``"joint"`` or ``"real"`` range of the bins (see ``hist_edges``).

    Returns:
        ``{p: chi2, f"{p}_nbins": bins left after merging}`` for every property p.
    """
    out: dict[str, float] = {}
    for p in real:
        chi2, n_bins = hist_chi2(real[p], fake[p], bins=bins, span=span)
        out[p] = chi2
        out[f"{p}_nbins"] = float(n_bins)
    return out
