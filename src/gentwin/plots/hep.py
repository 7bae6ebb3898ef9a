"""Histograms as particle physicists show them (mplhep's ROOT style), for any named 1-D observables.

Each observable is a panel: the reference half ``A`` against the generated sample as stairs with
statistical error bars (sqrt of the counts), over a ratio panel generated / reference with the floor's
band (grey: how far the second reference half ``B`` deviates from ``A`` in each bin, 1 +- |B/A - 1|).
Axis labels carry units; a non-negative quantity spanning more than two decades gets log bins and a
log axis (:func:`gentwin.metrics.challenge.spans_decades`); values on a lattice (counts, fractions
``k / n``) get bins centred on its points, so that no bin holds two of them and its neighbour none.
Each panel's title holds the separation power and its floor (``A`` against ``B``); values outside the
reference's range count in the edge bins, as in :func:`gentwin.metrics.challenge.separation_power`.
The ratio panel's limits follow the bins holding more than about ten reference entries (within 0 .. 3);
ratios beyond them are arrows at its edge.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from gentwin.metrics.challenge import bin_edges, separation_power

REF, GEN = "#1f4e9c", "#d1495b"
RATIO_RANGE = (0.0, 3.0)  # the widest ratio panel: beyond it a ratio is an arrow


@contextlib.contextmanager
def style():
    """mplhep's ROOT style with the small fonts of many-panel figures."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)  # the style's fonts absent: fallback
    import matplotlib.pyplot as plt
    import mplhep as hep

    with plt.style.context([hep.style.ROOT, {"font.size": 10, "axes.labelsize": 9, "xtick.labelsize": 8,
                                             "ytick.labelsize": 8, "legend.fontsize": 8}]):
        yield


def lattice_step(v: np.ndarray, max_points: int = 400) -> float | None:
    """The spacing of values lying on a lattice (all differences multiples of the smallest one, at most
    ``max_points`` distinct values: counts, fractions ``k / n``), else ``None``."""
    u = np.unique(v[np.isfinite(v)])
    if not 2 <= u.size <= max_points:
        return None
    d = np.diff(u)
    step = d.min()
    k = d / step
    return float(step) if np.allclose(k, np.round(k), rtol=0, atol=1e-6) and step > 0 else None


def lattice_edges(ref: np.ndarray, step: float, bins: int = 40) -> np.ndarray:
    """Edges half a ``step`` around the lattice points of ``ref``'s range, ``m`` points to a bin, ``m`` the
    fewest giving at most ``bins`` bins."""
    ref = ref[np.isfinite(ref)]
    k0, k1 = (int(round(v / step)) for v in (ref.min(), ref.max())) if ref.size else (0, 1)
    m = max(1, math.ceil((k1 - k0 + 1) / bins))
    n = math.ceil((k1 - k0 + 1) / m)
    return (k0 - 0.5 + m * np.arange(n + 1)) * step


def binning(ref: np.ndarray, bins: int = 40, step: float | None = None) -> tuple[np.ndarray, bool]:
    """``(edges, log)`` over the reference's range: on the lattice of ``step`` when given, else
    logarithmic when its values span > 2 decades (:func:`gentwin.metrics.challenge.bin_edges`)."""
    ref = np.asarray(ref, np.float64)
    if step:
        return lattice_edges(ref, step, bins), False
    return bin_edges(ref, bins, "auto")


def density(v: np.ndarray, edges: np.ndarray, per_width: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Counts normalised to the sample (per bin width when ``per_width``, else per bin) and their
    statistical errors; values outside the edges in the edge bins."""
    v = v[np.isfinite(v)]
    counts = np.histogram(np.clip(v, edges[0], edges[-1]), edges)[0].astype(float)
    scale = 1.0 / max(v.size, 1) / (np.diff(edges) if per_width else 1.0)
    return counts * scale, np.sqrt(counts) * scale


def _ratio(num, num_err, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan), np.where(den > 0, num_err / den, np.nan)


def ratio_limits(values: np.ndarray, clip: tuple[float, float] = RATIO_RANGE) -> tuple[float, float]:
    """Limits around 1 holding every finite value with a tenth to spare, at least 1 +- 0.1, within ``clip``."""
    values = values[np.isfinite(values)]
    half = max(float(np.abs(values - 1).max()) if values.size else 0.0, 0.09) * 1.1
    return max(clip[0], 1 - half), min(clip[1], 1 + half)


def histogram_panel(ax, rax, a: np.ndarray, b: np.ndarray, gen: np.ndarray, xlabel: str, title: str = "",
                    step: float | None = None, log_bins=False, unit: str = "") -> None:
    """One observable: reference half ``a`` vs ``gen`` (main axes ``ax``) and their ratio (``rax``), with
    the floor's band from the second half ``b`` and separation power and floor in the title.

    Args:
        step: the spacing of a lattice the values lie on (bins centred on its points).
        log_bins: the separation power's binning, as the metric computes it
            (:func:`gentwin.metrics.challenge.separation_power`).
        unit: the values' unit, for the y label of densities per unit.
    """
    import mplhep as hep

    a, b, gen = (np.asarray(v, np.float64).ravel() for v in (a, b, gen))
    edges, log = binning(a, step=step)
    (ha, ea), (hb, _), (hg, eg) = (density(v, edges, per_width=not log) for v in (a, b, gen))
    hep.histplot(ha, edges, yerr=ea, ax=ax, color=REF, label="reference", lw=1.5)
    hep.histplot(hg, edges, yerr=eg, ax=ax, color=GEN, label="generated", lw=1.5)
    value, floor = separation_power(a, gen, log_bins=log_bins), separation_power(a, b, log_bins=log_bins)
    ax.set_title(f"{title}{': ' if title else ''}sep. {value:.3g} (floor {floor:.2g})", fontsize=10)
    positive = np.concatenate([ha, hg])
    positive = positive[positive > 0]
    if positive.size and positive.max() > 100 * positive.min():
        ax.set_yscale("log")
    ax.set_ylabel("fraction per bin" if log else f"$1/N\\,dN/dx${f' [1/{unit}]' if unit else ''}", fontsize=9)
    ax.fill_between([], [], color="0.8", label="floor (ref. halves)")  # legend entry of the ratio panel's band
    ax.legend(fontsize=8, loc="best", frameon=False)
    band, _ = _ratio(hb, 0 * hb, ha)
    dev = np.nan_to_num(np.abs(band - 1), nan=0.0)
    r, re = _ratio(hg, eg, ha)
    # Limits from the bins holding more than about ten reference entries: a sparse tail's ratios are arrows.
    full = np.nan_to_num(ea / np.where(ha > 0, ha, np.inf), nan=1.0) < 0.3
    lo, hi = ratio_limits(np.concatenate([r[full], 1 + dev[full], 1 - dev[full]]))
    rax.stairs(np.minimum(1 + dev, hi), edges, baseline=np.maximum(1 - dev, lo), fill=True, color="0.8")
    hep.histplot(r, edges, yerr=re, ax=rax, color=GEN, histtype="errorbar", markersize=2)
    centres = np.sqrt(edges[:-1] * edges[1:]) if log else (edges[:-1] + edges[1:]) / 2
    span = hi - lo
    for out, y, marker in ((r > hi, hi - 0.06 * span, "^"), (r < lo, lo + 0.06 * span, "v")):
        if out.any():  # beyond the panel: an arrow at its edge
            rax.plot(centres[out], np.full(out.sum(), y), ls="", marker=marker, color=GEN, ms=4)
    rax.axhline(1, color="0.3", lw=0.8)
    rax.set_ylim(lo, hi)
    rax.set_ylabel("gen./ref.", fontsize=9)
    rax.set_xlabel(xlabel, fontsize=9)
    for axis in (ax, rax):
        axis.tick_params(labelsize=8)
        if log:
            axis.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1])
    rax.set_xlim(edges[0], edges[-1])
    ax.tick_params(labelbottom=False)


def histogram_figure(names: list[str], a: dict, b: dict, gen: dict, label, title=None, suptitle: str = "",
                     cols: int = 3, step=None, log_bins=False, unit=None):
    """The observables ``names`` as panels, each a :func:`histogram_panel`.

    Args:
        label: the x axis label, or a function of the observable's name giving it.
        title: a function of the name giving the panel's title (before the separation power), or ``None``.
        step: a function of the name giving its lattice spacing (or ``None``), or ``None``.
        log_bins: the separation power's ``log_bins`` (a bool, ``"auto"`` or name prefixes).
        unit: a function of the name giving its unit, or ``None``.
    """
    import matplotlib.pyplot as plt

    from gentwin.metrics.challenge import log_binned

    cols = min(cols, len(names))
    rows = math.ceil(len(names) / cols)
    fig = plt.figure(figsize=(4.2 * cols, 3.9 * rows + (0.3 if suptitle else 0)), layout="constrained")
    grid = fig.add_gridspec(rows, cols)
    for i, name in enumerate(names):
        sub = grid[i // cols, i % cols].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
        ax = fig.add_subplot(sub[0])
        rax = fig.add_subplot(sub[1], sharex=ax)
        histogram_panel(ax, rax, a[name], b[name], gen[name], label(name) if callable(label) else label,
                        title(name) if title else "", step(name) if step else None, log_binned(name, log_bins),
                        (unit(name) if unit else "") or "")
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)  # constrained layout keeps it clear of the panels' titles
    return fig
