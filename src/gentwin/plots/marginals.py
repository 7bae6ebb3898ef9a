"""Marginal histograms of named features, reference against generated (any domain, any file)."""

from __future__ import annotations

import math

import numpy as np


def marginals_figure(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], bins: int = 40,
                     max_panels: int = 16, labels: tuple[str, str] = ("reference", "generated"),
                     units: dict[str, str] | None = None):
    """A grid of the first ``max_panels`` features' histograms (densities, shared bins over both samples);
    titles carry ``units`` (``dataset.units``) where a feature has one."""
    import matplotlib

    from gentwin.data.units import label

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(real)[:max_panels]
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        a, b = np.asarray(real[name], float), np.asarray(fake[name], float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        both = np.concatenate([a, b])
        lo, hi = (both.min(), both.max()) if both.size else (0.0, 1.0)
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        ax.hist(a, edges, density=True, histtype="stepfilled", alpha=0.35, label=labels[0])
        ax.hist(b, edges, density=True, histtype="step", lw=1.5, label=labels[1])
        ax.set_title(label(name, units or {}), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
