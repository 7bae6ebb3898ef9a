"""Sparsity of TPC pad responses: hits above threshold, empty responses, the single-cell spectrum.

Real MPD responses are zero-suppressed: a cell without a recorded hit is exactly 0, a recorded one
holds at least 0.90 (see ``/work/shared/data/tpc/README.md``: amplitudes 0.90 to 11,650, a sharp
edge at 0.90). Generators give positive values everywhere (the output activation of Malchenko et
al. 2022 (TPC fast simulation), eq. (1), puts "off" cells below an amplitude of 0.072); a smooth
model such as the CVAE gives faint non-zero cells where real responses are 0. The five moments of
the profile chi2 (:mod:`gentwin.domains.tpc.metrics`) hardly see faint cells; the statistics here do.

A cell is a *hit* when its amplitude is >= ``threshold``. Default :data:`HIT_THRESHOLD` = 0.9, the
zero-suppression level of the data: the MPD file's smallest recorded amplitude is 0.9002 and the
embedded simulator suppresses below 0.9, so every recorded real cell is a hit and no real cell is
*faint*. The output activation's threshold T = log10(2) (amplitude 1) would drop the 2.1 % of
real hits between 0.90 and 1; its steep piece spans amplitudes 0.072 to 1, so a generator's cells
below 0.072 and above 1 fall on the same side of 0.9 as of 1.

A cell is *faint* when threshold / 10 <= |A| < threshold: within a decade below the threshold, where
a smooth model's halo lies (negative amplitudes, which an inverse ``log10(1 + A)`` scaling can give,
count by their size). Cells further below are as good as 0: the output activation's "off" level
(below 0.072) is not faint. No generator gives exact zeros; ``zero_fraction`` shows it.

:func:`sparsity_metrics` is a metric entry (``configs/metric/tpc.yaml``, ``sparsity/...``). Every
distance comes beside its floor, as in :func:`gentwin.metrics.floors.scorecard`: the real events are
split at random into halves A and B; the value compares A with the generated events of B's rows
(generated for B's conditions), the floor compares A with B, so both have the same sizes and a
value near its floor is as close to A as a second real sample.
"""

from __future__ import annotations

import numpy as np
import torch

from gentwin.domains.tpc.metrics import PROFILE_VARIABLES, profile_chi2_term, tpc_profiles
from gentwin.metrics.distances import wasserstein1
from gentwin.metrics.floors import split_halves
from gentwin.metrics.histograms import hist_chi2

#: Amplitude (data units) from which a cell counts as a hit: the data's zero-suppression level.
HIT_THRESHOLD = 0.9
#: Property key of the flattened cell amplitudes, (N, P * T), in the TPC datamodule's properties.
CELLS = "cells"


def cells(x) -> np.ndarray:
    """Cell amplitudes as float64 ``(N, P * T)`` from images ``(N, P, T)`` or cells ``(N, P * T)``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"expected responses (N, P, T) or (N, P * T), got shape {x.shape}")
    return x.reshape(len(x), -1)


def n_hits(x, threshold: float = HIT_THRESHOLD) -> np.ndarray:
    """Cells with amplitude >= ``threshold`` per response, (N,) int64, from ``x`` (N, P, T) or (N, P * T)."""
    return (cells(x) >= threshold).sum(axis=1)


def n_faint(x, threshold: float = HIT_THRESHOLD, decades: float = 1.0) -> np.ndarray:
    """Faint cells per response, threshold * 10**-decades <= |A| < threshold, (N,) int64, from ``x``
    (N, P, T) or (N, P * T); 0 for zero-suppressed data."""
    a = cells(x)
    return ((np.abs(a) >= threshold * 10.0**-decades) & (np.abs(a) < threshold)).sum(axis=1)


def zero_fraction(x) -> float:
    """Share of the cells of ``x`` (N, P, T) or (N, P * T) that are exactly 0."""
    return float(np.mean(cells(x) == 0))


def empty(x, threshold: float = HIT_THRESHOLD) -> np.ndarray:
    """Responses without any hit, (N,) bool, from ``x`` (N, P, T) or (N, P * T)."""
    return n_hits(x, threshold) == 0


def hit_spectrum(x, threshold: float = HIT_THRESHOLD) -> np.ndarray:
    """log10 amplitude of every hit of every response, pooled, (M,) with M = ``n_hits(x).sum()``."""
    a = cells(x)
    return np.log10(a[a >= threshold])


def spectrum_edges(threshold: float = HIT_THRESHOLD, width: float = 0.2, top: float = 4.5) -> np.ndarray:
    """Bin edges of :func:`cell_spectrum`: one bin below log10(threshold), then ``width``-dex bins to ``top``.

    Returns:
        (K + 2,) increasing edges, K = ceil((top - log10 threshold) / width); the first bin
        [log10 threshold - width, log10 threshold) holds the cells below threshold.
    """
    lo = np.log10(threshold)
    k = max(1, int(np.ceil((top - lo) / width)))
    return np.concatenate([[lo - width], lo + width * np.arange(k + 1)])


def cell_spectrum(x, threshold: float = HIT_THRESHOLD, width: float = 0.2) -> np.ndarray:
    """Every cell's log10 amplitude, cells below threshold (0 or faint) set to the middle of the
    first bin of :func:`spectrum_edges`: (N * P * T,). Its histogram is the single-cell spectrum with
    the share of cells below threshold as its first bin."""
    a = cells(x).ravel()
    below = np.log10(threshold) - 0.5 * width
    out = np.full(a.shape, below)
    hit = a >= threshold
    out[hit] = np.log10(a[hit])
    return out


def empty_fraction_error(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Binomial error of the difference of two fractions k_a / n_a and k_b / n_b (each its own p(1-p)/n)."""
    p_a, p_b = k_a / n_a, k_b / n_b
    return float(np.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b))


def sparsity_distances(ref, ref_cond: dict | None, other, other_cond: dict | None, threshold: float = HIT_THRESHOLD,
                       variables=PROFILE_VARIABLES, n_bins: int = 19, n_bootstrap: int = 100, width: float = 0.2,
                       top: float = 4.5, seed: int = 0) -> dict[str, float]:
    """Sparsity distances of responses ``other`` against the reference responses ``ref``; 0 when equal.

    Args:
        ref, other: responses (N_r, P, T) and (N_o, P, T), or their cells (N, P * T).
        ref_cond, other_cond: profile variables of each, name -> (N_r,) and (N_o,); ``None`` or no
            ``variables`` leaves out the profile chi2.
        threshold: hit threshold (amplitude units).
        variables, n_bins, n_bootstrap, seed: the profile chi2 of n_hits (:func:`tpc_profiles`).
        width, top: bins of the spectrum chi2 (:func:`spectrum_edges`).

    Returns:
        ``n_hits_w1``, ``n_hits_chi2``, ``n_hits_chi2_skipped_bins``, ``spectrum_w1``,
        ``spectrum_chi2``, ``empty_fraction_diff``: see :func:`sparsity_metrics`.
    """
    variables = [v for v in variables if ref_cond is not None and v in ref_cond]
    hits_r, hits_o = n_hits(ref, threshold), n_hits(other, threshold)
    out = {"n_hits_w1": wasserstein1(hits_r, hits_o)}
    if variables:
        profiles = tpc_profiles({"n_hits": hits_r}, {"n_hits": hits_o}, ref_cond, other_cond, variables,
                                ("n_hits",), n_bins, n_bootstrap, seed)
        terms = [profile_chi2_term(per_stat["n_hits"]) for per_stat in profiles.values()]
        out["n_hits_chi2"] = float(sum(t for t, _ in terms))
        out["n_hits_chi2_skipped_bins"] = float(sum(s for _, s in terms))
    spec_r, spec_o = hit_spectrum(ref, threshold), hit_spectrum(other, threshold)
    out["spectrum_w1"] = wasserstein1(spec_r, spec_o) if len(spec_r) and len(spec_o) else float("nan")
    edges = spectrum_edges(threshold, width, top)
    out["spectrum_chi2"] = hist_chi2(cell_spectrum(ref, threshold, width), cell_spectrum(other, threshold, width),
                                     bins=edges)[0]
    out["empty_fraction_diff"] = float((hits_o == 0).mean() - (hits_r == 0).mean())
    return out


def sparsity_metrics(
    real: dict,
    fake: dict,
    cond: dict | None = None,
    threshold: float = HIT_THRESHOLD,
    variables=PROFILE_VARIABLES,
    n_bins: int = 19,
    n_bootstrap: int = 100,
    spectrum_bin_width: float = 0.2,
    spectrum_top: float = 4.5,
    seed: int = 0,
) -> dict[str, float]:
    """Metric entry: sparsity of generated against real responses, every distance beside its floor.

    The real events are split at random (``seed``) into halves A and B (as
    :func:`gentwin.metrics.floors.scorecard` does); ``<key>`` compares A with the generated events
    of B's rows, ``<key>_floor`` compares A with B.

    Args:
        real: properties of the real responses; uses ``cells`` (N, P * T) amplitudes (the TPC
            datamodule's ``properties``).
        fake: the same for responses generated for the same conditions, row by row, (N, P * T).
        cond: profile variables, name -> (N,), shared by real and generated rows; ``None`` leaves
            out the profile chi2.
        threshold: hit threshold in amplitude units (default :data:`HIT_THRESHOLD`).
        variables: profile variables of the n_hits chi2 (those present in ``cond``).
        n_bins, n_bootstrap: binning and bootstrap of the profile chi2 (:func:`tpc_profiles`).
        spectrum_bin_width, spectrum_top: bins of ``spectrum_chi2`` (:func:`spectrum_edges`), dex.
        seed: seed of the split and of the bootstrap.

    Returns:
        Over all events: ``n_hits_mean_real`` / ``_fake``, ``n_faint_mean_real`` / ``_fake`` (faint
        cells per response, :func:`n_faint`), ``zero_fraction_real`` / ``_fake`` (share of cells
        exactly 0), ``empty_fraction_real`` / ``_fake`` (responses without a hit). Value and
        ``_floor`` each: ``n_hits_w1`` (W1 of the hits per response, in cells), ``n_hits_chi2`` (the
        profile chi2 of :func:`gentwin.domains.tpc.metrics.tpc_chi2` with n_hits as the statistic,
        summed over the variables) and ``n_hits_chi2_skipped_bins``, ``spectrum_w1`` (W1 of the log10
        amplitudes of single hits, dex), ``spectrum_chi2`` (:func:`gentwin.metrics.histograms.hist_chi2`
        of the single-cell spectrum, cells below threshold in its first bin), ``empty_fraction_diff``
        (generated minus real share of responses without a hit); ``empty_fraction_err``: binomial
        error of ``empty_fraction_diff``.
    """
    x_real, x_fake = cells(real[CELLS]), cells(fake[CELLS])
    n = len(x_real)
    if len(x_fake) != n:
        raise ValueError(f"{n} real and {len(x_fake)} generated responses: sparsity_metrics pairs them row by row")
    variables = [v for v in variables if cond is not None and v in cond]
    out = {
        "n_hits_mean_real": float(n_hits(x_real, threshold).mean()),
        "n_hits_mean_fake": float(n_hits(x_fake, threshold).mean()),
        "n_faint_mean_real": float(n_faint(x_real, threshold).mean()),
        "n_faint_mean_fake": float(n_faint(x_fake, threshold).mean()),
        "zero_fraction_real": zero_fraction(x_real),
        "zero_fraction_fake": zero_fraction(x_fake),
        "empty_fraction_real": float(empty(x_real, threshold).mean()),
        "empty_fraction_fake": float(empty(x_fake, threshold).mean()),
    }
    ia, ib = split_halves(n, seed)
    rows = lambda c, i: {v: np.asarray(c[v], dtype=np.float64)[i] for v in variables}
    ca, cb = (rows(cond, ia), rows(cond, ib)) if variables else (None, None)
    args = (threshold, variables, n_bins, n_bootstrap, spectrum_bin_width, spectrum_top, seed)
    value = sparsity_distances(x_real[ia], ca, x_fake[ib], cb, *args)
    floor = sparsity_distances(x_real[ia], ca, x_real[ib], cb, *args)
    for key, v in value.items():
        out[key], out[f"{key}_floor"] = v, floor[key]
    k_a, k_g = int(empty(x_real[ia], threshold).sum()), int(empty(x_fake[ib], threshold).sum())
    out["empty_fraction_err"] = empty_fraction_error(k_a, len(ia), k_g, len(ib))
    return out


#: ``gentwin.training.evaluate.run_metrics`` passes this entry the datamodule's per-sample arrays (``cells``).
sparsity_metrics.per_sample_arrays = True
