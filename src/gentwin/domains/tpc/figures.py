"""TPC figures: profiles of the response statistics (Malchenko et al. 2022 (TPC fast simulation) Figure 2) and real vs
generated responses."""

from __future__ import annotations

import numpy as np

from gentwin.plots import FAKE, REAL, plt


def profile_figure(profiles: dict[str, dict[str, dict[str, np.ndarray]]], title: str = ""):
    """Real vs generated profiles: one panel per statistic (rows) and profile variable (columns).

    As Malchenko et al. 2022 Figure 2 (TPC-FastSim ``make_trend_plot``): for each sample the middle band is the
    binned mean, the outer bands mean +- std; each band's thickness is its statistical error
    (``mean_err`` for the mean, ``sqrt(mean_err^2 + std_err^2)`` for mean +- std).

    Args:
        profiles: :func:`gentwin.domains.tpc.metrics.tpc_profiles` output, ``profiles[variable][statistic]``.
    """
    variables = list(profiles)
    statistics = list(profiles[variables[0]]) if variables else []
    fig, axes = plt.subplots(len(statistics), len(variables), squeeze=False,
                             figsize=(3.2 * len(variables), 2.2 * len(statistics)))
    for j, var in enumerate(variables):
        for i, stat in enumerate(statistics):
            p, ax = profiles[var][stat], axes[i, j]
            for tag, color, label in (("real", REAL, "real"), ("fake", FAKE, "generated")):
                m, s = p[f"{tag}_mean"], p[f"{tag}_std"]
                em, es = p[f"{tag}_mean_err"], np.hypot(p[f"{tag}_mean_err"], p[f"{tag}_std_err"])
                for k, (y, e) in enumerate(((m, em), (m + s, es), (m - s, es))):
                    ax.fill_between(p["centers"], y - e, y + e, color=color, alpha=0.6 if k == 0 else 0.35,
                                    linewidth=0, label=label if k == 0 else None)
            if i == len(statistics) - 1:
                ax.set_xlabel(var)
            if j == 0:
                ax.set_ylabel(stat)
            ax.tick_params(labelsize=7)
    if variables:
        axes[0, 0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def response_grid(real: np.ndarray, fake: np.ndarray, cond: dict[str, np.ndarray] | None = None, k: int = 8):
    """The first ``k`` real responses (top row) and the generated ones for the same conditions (below).

    Amplitudes are drawn as log10(1 + A) on one colour scale; columns are titled with the
    crossing angle, dip angle and drift length when ``cond`` holds them.

    Args:
        real, fake: ``(N, P, T)`` images in data space, generated row i for the conditions of real row i.
        cond: profile variables, name -> ``(N,)``.
    """
    k = min(k, len(real), len(fake))
    show = [np.log10(1.0 + np.clip(a[:k], 0.0, None)) for a in (real, fake)]
    vmax = max(float(a.max()) for a in show) if k else 1.0
    fig, axes = plt.subplots(2, max(k, 1), figsize=(1.6 * max(k, 1), 4.4), squeeze=False)
    for row, (images, label) in enumerate(zip(show, ("real", "generated"), strict=True)):
        for col in range(axes.shape[1]):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= k:
                ax.axis("off")
                continue
            ax.imshow(images[col], cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto", origin="lower")
            if col == 0:
                ax.set_ylabel(f"{label}\npad", fontsize=8)
            if row == 0 and cond is not None:
                parts = [f"{cond[n][col]:.1f}" for n in ("crossing_angle", "dip_angle", "drift_length") if n in cond]
                ax.set_title(", ".join(parts), fontsize=7)
    fig.suptitle("log10(1 + amplitude); columns: crossing angle, dip angle, drift length", fontsize=8)
    fig.tight_layout()
    return fig
