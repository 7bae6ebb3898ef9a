"""CaloChallenge's separation power (Krause et al., arXiv:2410.21611).

``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)`` over shared bins of the normalised histograms; 0 for
identical histograms, 1 for disjoint ones. The field's other conventions have one home each:
CaloChallenge's classifier test in :mod:`gentwin.metrics.classifier`, JetNet's FPD and KPD in
:mod:`gentwin.metrics.physics_distances`.
"""

from __future__ import annotations

import numpy as np

from gentwin.metrics.moments import Properties


def spans_decades(v: np.ndarray, decades: float = 2.0) -> bool:
    """Whether ``v`` is a non-negative quantity whose positive values span more than ``decades``
    decades (between their 0.5 % and 99.5 % quantiles, so a stray value does not decide)."""
    v = np.asarray(v, np.float64).ravel()
    v = v[np.isfinite(v)]
    pos = v[v > 0]
    if pos.size < 2 or v.min() < 0:
        return False
    lo, hi = np.quantile(pos, [0.005, 0.995])
    return bool(hi > 10**decades * lo)


def bin_edges(a: np.ndarray, bins: int = 50, log_bins: bool | str = False) -> tuple[np.ndarray, bool]:
    """``(edges, log)``: ``bins`` bins over the range of ``a`` (finite values), equal in width, or equal
    in log (from its smallest positive value) with ``log_bins=True``, or with ``"auto"`` when
    :func:`spans_decades`. Zeros then fall below the first edge (counted in the first bin by the clipping
    of :func:`separation_power`)."""
    a = np.asarray(a, np.float64).ravel()
    a = a[np.isfinite(a)]
    if log_bins not in (True, False, "auto"):
        raise ValueError(f"log_bins must be true, false or 'auto', got {log_bins!r}")
    if a.size == 0:
        return np.linspace(0.0, 1.0, bins + 1), False
    pos = a[a > 0]
    log = (log_bins is True or (log_bins == "auto" and spans_decades(a))) and pos.size > 0
    if log and pos.max() > pos.min():
        return np.geomspace(pos.min(), pos.max(), bins + 1), True
    lo, hi = a.min(), a.max()
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1), False


def separation_power(a: np.ndarray, b: np.ndarray, bins: int = 50, log_bins: bool | str = False) -> float:
    """CaloChallenge's separation power of two 1-D samples on shared bins.

    The bins span the first (reference) sample's range in ``bins`` equal widths, or equal in log
    (``log_bins=True``; ``"auto"``: for a non-negative quantity spanning more than two decades, as
    CaloChallenge bins the layer energies of its figures); values of either sample outside the range
    are counted in the edge bins, so a generated tail beyond the reference still counts. Histograms
    are normalised to unit sum.

    Returns:
        ``1/2 sum (h1 - h2)^2 / (h1 + h2)`` over bins where ``h1 + h2 > 0``, in [0, 1]; NaN if a sample is
        empty after dropping non-finite values.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    edges, _ = bin_edges(a, bins, log_bins)
    lo, hi = edges[0], edges[-1]
    h1 = np.histogram(np.clip(a, lo, hi), edges)[0] / a.size
    h2 = np.histogram(np.clip(b, lo, hi), edges)[0] / b.size
    total = h1 + h2
    used = total > 0
    return float(0.5 * np.sum((h1[used] - h2[used]) ** 2 / total[used]))


def log_binned(name: str, log_bins) -> bool | str:
    """The ``log_bins`` of property ``name``: ``log_bins`` itself when a bool or ``"auto"``; from a list
    of name prefixes, ``"auto"`` for the names starting with one of them, else ``False``."""
    if log_bins in (True, False, "auto") or log_bins is None:
        return bool(log_bins) if log_bins != "auto" else "auto"
    return "auto" if any(name.startswith(p) for p in log_bins) else False


def separation_powers(real: Properties, fake: Properties, cond: Properties | None = None,
                      bins: int = 50, log_bins=False) -> dict[str, float]:
    """Metric entry: :func:`separation_power` of every property and their ``mean``.

    ``log_bins``: as :func:`separation_power`, for all properties, or a list of name prefixes whose
    properties are binned with ``"auto"`` (e.g. ``[energy_]``: the calorimeter's energies).
    """
    out = {p: separation_power(real[p], fake[p], bins, log_binned(p, log_bins)) for p in real}
    finite = [v for v in out.values() if np.isfinite(v)]
    out["mean"] = float(np.mean(finite)) if finite else float("nan")
    return out
