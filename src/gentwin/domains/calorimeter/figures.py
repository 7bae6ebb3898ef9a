"""Figures of calorimeter showers as the field shows them (mplhep's ROOT style).

Every observable is a histogram of the reference half ``A`` against the generated sample: stairs with
statistical error bars (sqrt of the counts), a ratio panel generated / reference with the floor's
band (grey: how far the second reference half ``B`` deviates from ``A`` in each bin, 1 +- |B/A - 1|),
axis labels with units, log axes where the values span more than two decades, and the separation
power beside its floor (``A`` against ``B``) in each panel's title. Values outside the reference's
range count in the edge bins, as in :func:`gentwin.metrics.challenge.separation_power`. Per-layer
observables: one figure per kind, layers as panels. The average shower: each layer's mean voxel
energies in (alpha, r), reference, generated and their relative difference.
"""

from __future__ import annotations

import math

import numpy as np

from gentwin.domains.calorimeter.layout import Layout
from gentwin.domains.calorimeter.observables import kind_of
from gentwin.metrics.challenge import separation_power

REF, GEN = "#1f4e9c", "#d1495b"


def labels(energy_unit: str = "MeV", length_unit: str = "mm") -> dict[str, str]:
    """Axis label of each kind of observable."""
    e, x = f" [{energy_unit}]" if energy_unit else "", f" [{length_unit}]" if length_unit else ""
    return {"energy_total": f"deposited energy $E_\\mathrm{{dep}}${e}",
            "energy_ratio": "$E_\\mathrm{dep} / E_\\mathrm{inc}$",
            "energy_layer": f"layer energy{e}", "centre_eta": f"energy centre in $\\eta${x}",
            "centre_phi": f"energy centre in $\\phi${x}", "width_eta": f"shower width in $\\eta${x}",
            "width_phi": f"shower width in $\\phi${x}", "nonzero": "fraction of non-zero voxels"}


def _spans_decades(v: np.ndarray) -> bool:
    pos = v[v > 0]
    return pos.size > 0 and np.quantile(pos, 0.995) > 100 * np.quantile(pos, 0.005)


def binning(ref: np.ndarray, bins: int = 40) -> tuple[np.ndarray, bool]:
    """``(edges, log)`` over the reference's range; logarithmic when its positive values span > 2 decades."""
    ref = ref[np.isfinite(ref)]
    if ref.size == 0:
        return np.linspace(0, 1, bins + 1), False
    if _spans_decades(ref):
        pos = ref[ref > 0]
        return np.geomspace(pos.min(), pos.max(), bins + 1), True
    lo, hi = ref.min(), ref.max()
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1), False


def density(v: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised counts per bin width and their statistical errors; outside values in the edge bins."""
    v = v[np.isfinite(v)]
    counts = np.histogram(np.clip(v, edges[0], edges[-1]), edges)[0].astype(float)
    scale = 1.0 / max(v.size, 1) / np.diff(edges)
    return counts * scale, np.sqrt(counts) * scale


def _ratio(num, num_err, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan), np.where(den > 0, num_err / den, np.nan)


def histogram_panel(ax, rax, a: np.ndarray, b: np.ndarray, gen: np.ndarray, xlabel: str, title: str = "") -> None:
    """One observable: reference half ``a`` vs ``gen`` (main axes ``ax``) and their ratio (``rax``),
    with the floor's band from the second half ``b`` and separation power and floor in the title."""
    import mplhep as hep

    edges, log = binning(a)
    (ha, ea), (hb, _), (hg, eg) = (density(v, edges) for v in (a, b, gen))
    hep.histplot(ha, edges, yerr=ea, ax=ax, color=REF, label="reference", lw=1.5)
    hep.histplot(hg, edges, yerr=eg, ax=ax, color=GEN, label="generated", lw=1.5)
    value, floor = separation_power(a, gen), separation_power(a, b)
    ax.set_title(f"{title}{': ' if title else ''}sep. {value:.3g} (floor {floor:.2g})", fontsize=10)
    positive = np.concatenate([ha, hg])
    positive = positive[positive > 0]
    if positive.size and positive.max() > 100 * positive.min():
        ax.set_yscale("log")
    ax.set_ylabel("normalised entries", fontsize=9)
    ax.fill_between([], [], color="0.8", label="floor band")  # legend entry of the ratio panel's band
    ax.legend(fontsize=8, loc="best", frameon=False)
    band, _ = _ratio(hb, 0 * hb, ha)
    dev = np.nan_to_num(np.abs(band - 1), nan=0.0)
    rax.stairs(1 + dev, edges, baseline=1 - dev, fill=True, color="0.8", label="floor (ref. halves)")
    r, re = _ratio(hg, eg, ha)
    hep.histplot(r, edges, yerr=re, ax=rax, color=GEN, histtype="errorbar", markersize=2)
    rax.axhline(1, color="0.3", lw=0.8)
    rax.set_ylim(0.5, 1.5)
    rax.set_ylabel("gen./ref.", fontsize=9)
    rax.set_xlabel(xlabel, fontsize=9)
    for axis in (ax, rax):
        axis.tick_params(labelsize=8)
        if log:
            axis.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1])
    rax.set_xlim(edges[0], edges[-1])
    ax.tick_params(labelbottom=False)


def observable_figure(names: list[str], a: dict, b: dict, gen: dict, label, suptitle: str, cols: int = 3):
    """The observables ``names`` as panels (each a histogram over its ratio panel); ``label``: the x
    axis label, or a function of the observable's name giving it."""
    import matplotlib.pyplot as plt

    cols = min(cols, len(names))
    rows = math.ceil(len(names) / cols)
    fig = plt.figure(figsize=(4.2 * cols, 3.9 * rows), layout="constrained")
    grid = fig.add_gridspec(rows, cols)
    for i, name in enumerate(names):
        sub = grid[i // cols, i % cols].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
        ax = fig.add_subplot(sub[0])
        rax = fig.add_subplot(sub[1], sharex=ax)
        layer = name.rpartition("_")[2]
        histogram_panel(ax, rax, a[name], b[name], gen[name], label(name) if callable(label) else label,
                        f"layer {layer}" if layer.isdigit() else "")
    fig.suptitle(suptitle, fontsize=12)
    return fig


def average_shower_figure(ref: np.ndarray, gen: np.ndarray, layout: Layout, energy_unit: str = "MeV"):
    """Each layer's mean voxel energies in the (alpha, r) plane: reference, generated, and
    (generated - reference) / reference. The radius is drawn as ln(1 + r / r_1), r_1 the smallest
    non-zero edge, so the fine inner bins stay visible beside the wide outer ones."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    mean_ref, mean_gen = (np.asarray(v, np.float64).reshape(len(v), -1).mean(0) for v in (ref, gen))
    r1 = min(layer.r_edges[1] for layer in layout.layers)
    n = len(layout.layers)
    fig, axes = plt.subplots(3, n, figsize=(2.3 * n + 1.2, 7.4), subplot_kw={"projection": "polar"},
                             squeeze=False, layout="constrained")
    positive = np.concatenate([mean_ref, mean_gen])
    positive = positive[positive > 0]
    norm = LogNorm(max(positive.min(), positive.max() * 1e-6), positive.max()) if positive.size else None
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 100 * np.where(mean_ref > 0, mean_gen / mean_ref - 1, np.nan)
    lim = max(float(np.nanmax(np.abs(rel))) if np.isfinite(rel).any() else 1.0, 1.0)
    lim = min(lim, 100.0)
    diff_norm = TwoSlopeNorm(0.0, -lim, lim)
    for j, (layer, cols) in enumerate(zip(layout.layers, layout.slices(), strict=True)):
        split = max(1, math.ceil(72 / layer.n_alpha))  # enough segments for a round ring
        theta = np.linspace(-math.pi, math.pi, layer.n_alpha * split + 1)
        radius = np.log1p(np.asarray(layer.r_edges) / r1)
        for i, (values, cmap, nrm) in enumerate(((mean_ref, "viridis", norm), (mean_gen, "viridis", norm),
                                                 (rel, "RdBu_r", diff_norm))):
            grid = np.repeat(values[cols].reshape(layer.n_alpha, layer.n_r), split, axis=0)
            ax = axes[i, j]
            mesh = ax.pcolormesh(theta, radius, grid.T, cmap=cmap, norm=nrm)
            ax.set_ylim(0, radius[-1])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_title(f"layer {layer.id}\n$r \\leq$ {layer.r_edges[-1]:g} mm", fontsize=9)
            if j == 0:
                ax.text(-0.25, 0.5, ("reference", "generated", "gen./ref. − 1")[i], transform=ax.transAxes,
                        rotation=90, va="center", ha="center", fontsize=10)
            if j == n - 1:
                bar = fig.colorbar(mesh, ax=axes[i, :].tolist(), shrink=0.85, pad=0.02)
                bar.set_label(f"mean energy [{energy_unit}]" if i < 2 else "difference [%]", fontsize=9)
                bar.ax.tick_params(labelsize=8)
    fig.suptitle(f"average shower per layer (radius: ln(1 + r / {r1:g} mm))", fontsize=11)
    return fig


def calorimeter_figures(a: dict, b: dict, gen: dict, ref_showers: np.ndarray, gen_showers: np.ndarray,
                        layout: Layout, energy_unit: str = "MeV", length_unit: str = "mm") -> dict:
    """All figures: ``calo_energy`` (total and ratio), one ``calo_<kind>`` per per-layer kind, and
    ``calo_average_shower``.

    Args:
        a, b: observables of the two reference halves; ``gen``: of the generated sample.
        ref_showers, gen_showers: the voxels, for the average shower.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep as hep

    text = labels(energy_unit, length_unit)
    kinds: dict[str, list[str]] = {}
    for name in a:
        if np.ndim(a[name]) == 1:
            kinds.setdefault(kind_of(name), []).append(name)
    figs = {}
    with plt.style.context([hep.style.ROOT, {"font.size": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
                                             "ytick.labelsize": 8, "legend.fontsize": 8}]):
        overall = [n for k in ("energy_total", "energy_ratio") for n in kinds.pop(k, [])]
        if overall:
            figs["calo_energy"] = observable_figure(overall, a, b, gen, text.get, "deposited energy")
        for kind, names in kinds.items():
            figs[f"calo_{kind}"] = observable_figure(names, a, b, gen, text.get(kind, kind),
                                                     text.get(kind, kind).split(" [")[0] + " per layer")
        figs["calo_average_shower"] = average_shower_figure(ref_showers, gen_showers, layout, energy_unit)
    return figs



def shower_figures(ref: np.ndarray, ref_c, gen: np.ndarray, gen_c, layout: Layout, halves=None, seed: int = 0,
                   energy_unit: str = "MeV") -> dict:
    """:func:`calorimeter_figures` of showers: the reference split into halves ``A``, ``B`` (``halves``,
    else at random by ``seed``), against the first ``len(B)`` generated showers (``gen`` generated for
    ``B``'s conditions, or shuffled) -- the rows ``evaluate``'s scorecard compares."""
    from gentwin.domains.calorimeter.observables import incident_energy, observables

    if halves is None:
        perm = np.random.default_rng(seed).permutation(len(ref))
        halves = perm[: len(ref) // 2], perm[len(ref) // 2 :]
    ia, ib = halves
    inc, gen_inc = incident_energy(ref_c), incident_energy(gen_c)
    a, b = (observables(ref[i], layout, None if inc is None else inc[i]) for i in (ia, ib))
    g = observables(gen[: len(ib)], layout, None if gen_inc is None else gen_inc[: len(ib)])
    return calorimeter_figures(a, b, g, ref, gen, layout, energy_unit)
