"""TPC figures: profiles of the response statistics and real vs generated responses, with units."""

from __future__ import annotations

import numpy as np

from gentwin.plots.common import FAKE, REAL, plt

#: Units of the response statistics and the profile variables (pads and time buckets of the readout).
UNITS = {"Mean0": "pad", "Mean1": "time bucket", "Sigma0^2": "pad²", "Sigma1^2": "time bucket²",
         "Cov01": "pad × time bucket", "Sum": "ADC counts", "crossing_angle": "deg", "dip_angle": "deg",
         "drift_length": "time bucket", "drift_length_frac": "time bucket", "pad_coordinate_frac": "pad"}
#: Statistics that are positive: drawn on a log scale, where mean - std may not reach below 0.
POSITIVE = ("Sigma0^2", "Sigma1^2", "Sum")


def _label(name: str) -> str:
    return f"{name} [{UNITS[name]}]" if name in UNITS else name


def profile_figure(profiles: dict[str, dict[str, dict[str, np.ndarray]]], title: str = ""):
    """Real vs generated profiles: one panel per statistic (rows) and profile variable (columns).

    As Maevskiy et al.'s trend plots (TPC-FastSim ``make_trend_plot``; Figure 2 of the HSE term
    paper): for each sample the inner band is the binned mean, the outer bands mean ± std; each band's
    thickness is its statistical error (``mean_err`` for the mean, ``sqrt(mean_err² + std_err²)``
    for mean ± std). Positive statistics (the second moments, ``Sum``) are on a log scale, where the
    lower band is left out for bins in which mean - std is not positive, so a spread wider than the
    mean does not flatten the curves. The legend under the figure says what the bands are.

    Args:
        profiles: :func:`gentwin.domains.tpc.metrics.tpc_profiles` output, ``profiles[variable][statistic]``.
        title: figure title (the run's state, e.g. epoch and chi2).
    """
    from matplotlib.patches import Patch

    variables = list(profiles)
    statistics = list(profiles[variables[0]]) if variables else []
    width, height = 3.2 * len(variables), 2.2 * len(statistics) + 0.8
    fig, axes = plt.subplots(len(statistics), len(variables), squeeze=False, figsize=(width, height))
    # Fixed margins in inches: tight_layout on 30 panels took 1.5 s of the figure's 3.6 s.
    fig.subplots_adjust(left=0.8 / width, right=1 - 0.15 / width, bottom=1.0 / height, top=1 - 0.5 / height,
                        wspace=0.3, hspace=0.3)
    for j, var in enumerate(variables):
        for i, stat in enumerate(statistics):
            p, ax = profiles[var][stat], axes[i, j]
            positive = stat in POSITIVE
            floor = min((float(np.min(p[f"{t}_mean"][p[f"{t}_mean"] > 0])) for t in ("real", "fake")
                         if np.any(p[f"{t}_mean"] > 0)), default=1e-3) / 10 if positive else None
            for tag, color in (("real", REAL), ("fake", FAKE)):
                m, s = p[f"{tag}_mean"], p[f"{tag}_std"]
                em, es = p[f"{tag}_mean_err"], np.hypot(p[f"{tag}_mean_err"], p[f"{tag}_std_err"])
                for k, (y, e) in enumerate(((m, em), (m + s, es), (m - s, es))):
                    lo, hi = y - e, y + e
                    if positive:  # where mean - std is not positive the band is left out
                        lo, hi = np.where(y > 0, np.maximum(lo, floor), np.nan), np.where(y > 0, hi, np.nan)
                    ax.fill_between(p["centers"], lo, hi, color=color, alpha=0.6 if k == 0 else 0.3, linewidth=0)
            if positive:
                ax.set_yscale("log")
            if i == len(statistics) - 1:
                ax.set_xlabel(_label(var), fontsize=8)
            if j == 0:
                ax.set_ylabel(_label(stat), fontsize=8)
            ax.tick_params(which="both", labelsize=7)  # a log axis labels its minor ticks too
    handles = [Patch(color=REAL, alpha=0.6, label="real: mean"), Patch(color=REAL, alpha=0.3, label="real: mean ± std"),
               Patch(color=FAKE, alpha=0.6, label="generated: mean"),
               Patch(color=FAKE, alpha=0.3, label="generated: mean ± std")]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False,
               title="per bin of the variable; band width = statistical error", title_fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def response_grid(real: np.ndarray, fake: np.ndarray, cond: dict[str, np.ndarray] | None = None, k: int = 8):
    """The first ``k`` real responses (top row) and the generated ones for the same conditions (below).

    Amplitudes are drawn as log10(1 + A) on one colour scale (the colour bar), pads across and time
    buckets up; columns are titled with the crossing angle, dip angle and drift length when ``cond``
    holds them.

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
            image = ax.imshow(images[col].T, cmap="viridis", vmin=0.0, vmax=vmax, aspect="auto", origin="lower")
            if col == 0:
                ax.set_ylabel(f"{label}\ntime bucket", fontsize=8)
            if row == 1:
                ax.set_xlabel("pad", fontsize=8)
            if row == 0 and cond is not None:
                parts = [f"{cond[n][col]:.1f}" for n in ("crossing_angle", "dip_angle", "drift_length") if n in cond]
                ax.set_title(", ".join(parts), fontsize=7)
    fig.suptitle("real (top) and generated (bottom) for the same conditions; column titles: crossing angle [deg], "
                 "dip angle [deg], drift length [time bucket]", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    if k:  # its own axes at the right, so that later layout changes (a title) leave it clear of the panels
        bar = fig.colorbar(image, cax=fig.add_axes((0.935, 0.12, 0.012, 0.72)))
        bar.set_label("log10(1 + amplitude [ADC counts])", fontsize=8)
    return fig
