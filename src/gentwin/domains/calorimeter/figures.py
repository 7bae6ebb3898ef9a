"""Figures of calorimeter showers as the field shows them (mplhep's ROOT style).

Every observable is a histogram of the reference half ``A`` against the generated sample over a ratio
panel with the floor's band (:mod:`gentwin.plots.hep`): stairs with statistical error bars, axis labels
with units, log axes where the values span more than two decades, the fractions of non-zero voxels
binned on their lattice ``k / n_voxels``, and the separation power (the energies in log bins, as the
metric group computes it) beside its floor in each panel's title. Per-layer observables: one figure
per kind, layers as panels. The average shower: each layer's mean voxel energies, in (alpha, r) or in
(x, y) for a grid, reference, generated and their relative difference.
"""

from __future__ import annotations

import math

import numpy as np

from gentwin.domains.calorimeter.layout import GridLayer, Layout
from gentwin.domains.calorimeter.observables import LOG_BINNED, kind_of
from gentwin.metrics.floors import split_halves
from gentwin.plots.hep import histogram_figure, style


def labels(energy_unit: str = "MeV", length_unit: str = "mm") -> dict[str, str]:
    """Axis label of each kind of observable."""
    e, x = f" [{energy_unit}]" if energy_unit else "", f" [{length_unit}]" if length_unit else ""
    out = {"energy_total": f"deposited energy $E_\\mathrm{{dep}}${e}",
           "energy_ratio": "$E_\\mathrm{dep} / E_\\mathrm{inc}$",
           "energy_layer": f"layer energy{e}", "nonzero": "fraction of non-zero voxels"}
    for axis, symbol in (("eta", "$\\eta$"), ("phi", "$\\phi$"), ("x", "$x$"), ("y", "$y$")):
        out[f"centre_{axis}"] = f"energy centre in {symbol}{x}"
        out[f"width_{axis}"] = f"shower width in {symbol}{x}"
    return out


def _units(energy_unit: str, length_unit: str):
    def unit(name: str) -> str:
        kind = kind_of(name)
        return energy_unit if kind.startswith("energy_") and kind != "energy_ratio" else (
            "" if kind in ("energy_ratio", "nonzero") else length_unit)
    return unit


def _layer_title(name: str) -> str:
    layer = name.rpartition("_")[2]
    return f"layer {layer}" if layer.isdigit() else ""


def average_shower_figure(ref: np.ndarray, gen: np.ndarray, layout: Layout, energy_unit: str = "MeV"):
    """Each layer's mean voxel energies in the (alpha, r) plane, or (x, y) for a grid: reference,
    generated, and (generated - reference) / reference. The radius is drawn as ln(1 + r / r_1), r_1 the
    smallest non-zero edge, so the fine inner bins stay visible beside the wide outer ones."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    mean_ref, mean_gen = (np.asarray(v, np.float64).reshape(len(v), -1).mean(0) for v in (ref, gen))
    grid_layout = all(isinstance(layer, GridLayer) for layer in layout.layers)
    r1 = None if grid_layout else min(layer.r_edges[1] for layer in layout.layers)
    n = len(layout.layers)
    fig, axes = plt.subplots(3, n, figsize=(2.3 * n + 1.2, 7.4), subplot_kw={} if grid_layout else
                             {"projection": "polar"}, squeeze=False, layout="constrained")
    positive = np.concatenate([mean_ref, mean_gen])
    positive = positive[positive > 0]
    norm = LogNorm(max(positive.min(), positive.max() * 1e-6), positive.max()) if positive.size else None
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = 100 * np.where(mean_ref > 0, mean_gen / mean_ref - 1, np.nan)
    lim = max(float(np.nanmax(np.abs(rel))) if np.isfinite(rel).any() else 1.0, 1.0)
    lim = min(lim, 100.0)
    diff_norm = TwoSlopeNorm(0.0, -lim, lim)
    for j, (layer, cols) in enumerate(zip(layout.layers, layout.slices(), strict=True)):
        for i, (values, cmap, nrm) in enumerate(((mean_ref, "viridis", norm), (mean_gen, "viridis", norm),
                                                 (rel, "RdBu_r", diff_norm))):
            ax = axes[i, j]
            if grid_layout:
                ex, ey = layer.edges()
                mesh = ax.pcolormesh(ex, ey, values[cols].reshape(layer.nx, layer.ny).T, cmap=cmap, norm=nrm)
                ax.set_aspect("equal")
                ax.tick_params(labelsize=7)
                ax.set_xlabel("$x$ [mm]", fontsize=8)
                if i == 0:
                    ax.set_title(f"layer {layer.id}", fontsize=9)
            else:
                split = max(1, math.ceil(72 / layer.n_alpha))  # enough segments for a round ring
                theta = np.linspace(-math.pi, math.pi, layer.n_alpha * split + 1)
                radius = np.log1p(np.asarray(layer.r_edges) / r1)
                grid = np.repeat(values[cols].reshape(layer.n_alpha, layer.n_r), split, axis=0)
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
    fig.suptitle("average shower per layer" + ("" if grid_layout else f" (radius: ln(1 + r / {r1:g} mm))"),
                 fontsize=11)
    return fig


def calorimeter_figures(a: dict, b: dict, gen: dict, ref_showers: np.ndarray, gen_showers: np.ndarray,
                        layout: Layout, energy_unit: str = "MeV", length_unit: str = "mm") -> dict:
    """All figures: ``calo_energy`` (total and ratio), one ``calo_<kind>`` per per-layer kind, and
    ``calo_average_shower``.

    Args:
        a, b: observables of the two reference halves; ``gen``: of the generated sample.
        ref_showers, gen_showers: the voxels, for the average shower.
    """
    text = labels(energy_unit, length_unit)
    sizes = {str(layer.id): layer.size for layer in layout.layers}
    step = lambda name: 1.0 / sizes[name.rpartition("_")[2]] if kind_of(name) == "nonzero" else None
    kinds: dict[str, list[str]] = {}
    for name in a:
        if np.ndim(a[name]) == 1:
            kinds.setdefault(kind_of(name), []).append(name)
    common = {"title": _layer_title, "step": step, "log_bins": LOG_BINNED, "unit": _units(energy_unit, length_unit)}
    figs = {}
    with style():
        overall = [n for k in ("energy_total", "energy_ratio") for n in kinds.pop(k, [])]
        if overall:
            figs["calo_energy"] = histogram_figure(overall, a, b, gen, lambda n: text[kind_of(n)],
                                                   suptitle="deposited energy", **common)
        for kind, names in kinds.items():
            figs[f"calo_{kind}"] = histogram_figure(names, a, b, gen, text.get(kind, kind),
                                                    suptitle=text.get(kind, kind).split(" [")[0] + " per layer",
                                                    **common)
        figs["calo_average_shower"] = average_shower_figure(ref_showers, gen_showers, layout, energy_unit)
    return figs


def shower_figures(ref: np.ndarray, ref_c, gen: np.ndarray, gen_c, layout: Layout, halves=None, seed: int = 0,
                   energy_unit: str = "MeV") -> dict:
    """:func:`calorimeter_figures` of showers: the reference split into halves ``A``, ``B`` (``halves``,
    else at random by ``seed``), against the first ``len(B)`` generated showers (``gen`` generated for
    ``B``'s conditions, or shuffled) -- the rows ``evaluate``'s scorecard compares."""
    from gentwin.domains.calorimeter.observables import incident_energy, observables

    if halves is None:
        halves = split_halves(len(ref), seed)
    ia, ib = halves
    inc, gen_inc = incident_energy(ref_c), incident_energy(gen_c)
    a, b = (observables(ref[i], layout, None if inc is None else inc[i]) for i in (ia, ib))
    g = observables(gen[: len(ib)], layout, None if gen_inc is None else gen_inc[: len(ib)])
    return calorimeter_figures(a, b, g, ref, gen, layout, energy_unit)
