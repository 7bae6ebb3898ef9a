"""Figures for TensorBoard and reports (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

REAL, FAKE = "#1f77b4", "#d62728"


def scatter_and_marginals(real: np.ndarray, fake: np.ndarray, title: str = "", max_points: int = 2000):
    """Real vs generated 2-D points, with the histogram of each coordinate.

    Args:
        real, fake: ``(N, D)`` samples; the first two features are drawn.
    """
    real, fake = real.reshape(len(real), -1), fake.reshape(len(fake), -1)
    d = real.shape[1]
    fig, axes = plt.subplots(1, 1 + d, figsize=(4 * (1 + d), 3.6))
    ax = axes[0]
    if d >= 2:
        ax.scatter(*real[:max_points, :2].T, s=3, alpha=0.5, c=REAL, label="real")
        ax.scatter(*fake[:max_points, :2].T, s=3, alpha=0.5, c=FAKE, label="generated")
        ax.set_xlabel("x0")
        ax.set_ylabel("x1")
    ax.legend(loc="best", markerscale=3)
    ax.set_title(title)
    for i in range(d):
        ax = axes[1 + i]
        lo = min(real[:, i].min(), fake[:, i].min())
        hi = max(real[:, i].max(), fake[:, i].max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 50)
        ax.hist(real[:, i], bins=bins, histtype="step", color=REAL, density=True, label="real")
        ax.hist(fake[:, i], bins=bins, histtype="step", color=FAKE, density=True, label="generated")
        ax.set_xlabel(f"x{i}")
        ax.set_ylabel("probability density")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def stamp(fig, text: str) -> None:
    """Puts ``text`` (the run's state: epoch, monitored metric) above a figure's own title."""
    old = fig._suptitle.get_text() if fig._suptitle is not None else ""
    fig.suptitle(f"{text}\n{old}" if old else text, fontsize=9, y=0.995, va="top")
    if fig.get_layout_engine() is not None:  # constrained layout makes room for the title itself
        return
    room = (0.45 if old else 0.3) / fig.get_figheight()  # inches of title over the panels
    fig.subplots_adjust(top=min(fig.subplotpars.top, 1 - room))


def tensorboard(trainer):
    """The TensorBoard ``SummaryWriter`` of the trainer, or ``None``."""
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None
