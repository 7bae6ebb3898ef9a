"""CaloChallenge's separation power (Krause et al., arXiv:2410.21611).

``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)`` over shared bins of the normalised histograms; 0 for
identical histograms, 1 for disjoint ones. The field's other conventions have one home each:
CaloChallenge's classifier test in :mod:`gentwin.metrics.classifier`, JetNet's FPD and KPD in
:mod:`gentwin.metrics.physics_distances`.
"""

from __future__ import annotations

import numpy as np

from gentwin.metrics.moments import Properties


def separation_power(a: np.ndarray, b: np.ndarray, bins: int = 50) -> float:
    """CaloChallenge's separation power of two 1-D samples on shared bins.

    The bins span the first (reference) sample's range in ``bins`` equal widths; values of either
    sample outside it are counted in the edge bins, so a generated tail beyond the reference still
    counts. Histograms are normalised to unit sum.

    Returns:
        ``1/2 sum (h1 - h2)^2 / (h1 + h2)`` over bins where ``h1 + h2 > 0``, in [0, 1]; NaN if a sample is
        empty after dropping non-finite values.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    lo, hi = a.min(), a.max()
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    h1 = np.histogram(np.clip(a, lo, hi), edges)[0] / a.size
    h2 = np.histogram(np.clip(b, lo, hi), edges)[0] / b.size
    total = h1 + h2
    used = total > 0
    return float(0.5 * np.sum((h1[used] - h2[used]) ** 2 / total[used]))


def separation_powers(real: Properties, fake: Properties, cond: Properties | None = None,
                      bins: int = 50) -> dict[str, float]:
    """Metric entry: :func:`separation_power` of every property and their ``mean``."""
    out = {p: separation_power(real[p], fake[p], bins) for p in real}
    finite = [v for v in out.values() if np.isfinite(v)]
    out["mean"] = float(np.mean(finite)) if finite else float("nan")
    return out
