"""Figures and image grids for image datasets (leaves, microstructures, digits).

Grids are plain ``(H, W, 3)`` arrays in [0, 1] (cheap enough to log every few hundred steps with
``SummaryWriter.add_image``); the comparisons are matplotlib figures for ``add_figure``, like
``gentwin.plots.common``. Images are drawn by ``to_rgb`` unless a domain gives its own colouring (``rgb``:
``ImageDataModule.to_rgb``, e.g. the leaves' palette).
"""

from __future__ import annotations

import math

import numpy as np

from gentwin.plots.common import FAKE, REAL, plt


def clipped(images: np.ndarray) -> np.ndarray:
    """Images ``(N, C, H, W)`` as float32 in [0, 1], NaN as 0 (what a colouring draws)."""
    x = np.clip(np.nan_to_num(np.asarray(images, dtype=np.float32)), 0.0, 1.0)
    if x.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {x.shape}")
    return x


def to_rgb(images: np.ndarray) -> np.ndarray:
    """Images ``(N, C, H, W)`` in [0, 1] as RGB ``(N, H, W, 3)``, whatever the channels mean.

    One channel is grey, three are RGB, two are red and green on black; further channels are not shown.
    """
    x = clipped(images)
    c = x.shape[1]
    if c == 2:
        x = np.concatenate([x, np.zeros_like(x[:, :1])], axis=1)
    if x.shape[1] >= 3:
        return x[:, :3].transpose(0, 2, 3, 1)
    return np.repeat(x[:, 0, ..., None], 3, axis=-1)


def tile(images: np.ndarray, nrow: int = 8, pad: int = 1, min_side: int = 32, rgb=to_rgb) -> np.ndarray:
    """A grid ``(H', W', 3)`` of images ``(N, C, H, W)``, ``nrow`` per row, grey gaps of ``pad`` px.

    Images smaller than ``min_side`` are enlarged by an integer factor (nearest neighbour), so 8x8
    digits stay legible in TensorBoard. ``rgb`` colours them (``(N, C, H, W) -> (N, H, W, 3)``).
    """
    rgb = rgb(images)
    n, h, w, _ = rgb.shape
    k = max(1, math.ceil(min_side / max(h, w)))
    if k > 1:
        rgb = rgb.repeat(k, axis=1).repeat(k, axis=2)
        h, w = h * k, w * k
    cols = max(1, min(nrow, n))
    rows = max(1, math.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 0.5, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = rgb[i]
    return out


def reconstruction_figure(x: np.ndarray, x_hat: np.ndarray, nrow: int = 8, rgb=to_rgb):
    """:func:`reconstruction_grid` as a figure whose rows are labelled ``input`` and ``reconstruction``."""
    grid = reconstruction_grid(x, x_hat, nrow, rgb)
    n_rows = 2 * -(-min(len(x), len(x_hat)) // nrow)
    fig, ax = plt.subplots(figsize=(7, 7 * grid.shape[0] / grid.shape[1] + 0.5))
    ax.imshow(grid, interpolation="nearest")
    row = grid.shape[0] / n_rows
    ax.set_yticks([row * (i + 0.5) for i in range(n_rows)],
                  ["input" if i % 2 == 0 else "reconstruction" for i in range(n_rows)], fontsize=8)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title("held-out inputs and their reconstructions (posterior mean, no decoder noise)", fontsize=9)
    fig.tight_layout()
    return fig


def reconstruction_grid(x: np.ndarray, x_hat: np.ndarray, nrow: int = 8, rgb=to_rgb) -> np.ndarray:
    """Originals and their reconstructions in alternating rows of ``nrow`` images, coloured by ``rgb``."""
    n = min(len(x), len(x_hat))
    rows = []
    for i in range(0, n, nrow):
        rows += [x[i:i + nrow], x_hat[i:i + nrow]]
    return tile(np.concatenate(rows), nrow=nrow, rgb=rgb)


def _scale_bar(ax, image_side: int, tile_side: int, pixel: tuple[float, str]) -> None:
    """A bar under the first tile of a grid: a round length in the images' units (``pixel``: the side
    of one pixel of the original images and its unit; a tile may be enlarged to ``tile_side``)."""
    size, unit = pixel
    per_tile_pixel = size * image_side / tile_side  # units per pixel of the grid
    target = per_tile_pixel * tile_side * 0.6
    length = max(v for v in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if v <= max(target, 0.1))
    bar = length / per_tile_pixel
    y = ax.get_ylim()[0] + 0.4 * tile_side
    ax.plot([1, 1 + bar], [y, y], color="black", linewidth=3, solid_capstyle="butt", clip_on=False)
    ax.text(1 + bar / 2, y + 0.1 * tile_side, f"{length:g} {unit}", ha="center", va="top", fontsize=9,
            clip_on=False)


def sample_comparison(real: np.ndarray, fake: np.ndarray, n: int = 32, nrow: int = 8, title: str = "",
                      rgb=to_rgb, pixel: tuple[float, str] | None = None):
    """Held-out data (left) next to generated images (right), ``n`` of each, coloured by ``rgb``;
    ``pixel`` (side of one image pixel, unit) adds a scale bar under each grid."""
    grids = [tile(real[:n], nrow=nrow, rgb=rgb), tile(fake[:n], nrow=nrow, rgb=rgb)]
    aspect = max(g.shape[0] / g.shape[1] for g in grids)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5 * aspect + (1.2 if pixel else 0.8)))
    side = real.shape[-1] if real.ndim >= 2 else 1
    for ax, x, grid, name in ((axes[0], real, grids[0], "data"), (axes[1], fake, grids[1], "generated")):
        ax.imshow(grid, interpolation="nearest")
        ax.set_title(f"{name} ({min(n, len(x))} of {len(x)})")
        ax.axis("off")
        if pixel:
            _scale_bar(ax, side, (grid.shape[1] - 1) // min(nrow, max(len(x[:n]), 1)) - 1, pixel)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _is_count(values: np.ndarray) -> bool:
    return values.size > 0 and np.allclose(values, np.round(values)) and np.ptp(values) <= 40


def property_histograms(real: dict, fake: dict, names=None, title: str = "", units: dict | None = None):
    """Per-property histograms of data vs generated samples on the same bins, in per cent of each
    sample (after van Beek 2023 (leaf digital twin), Figures 9 and 13).

    Count properties (integers over a small range) are drawn as side-by-side bars, one pair per
    value, so no two values share a bar; others as step histograms on 30 shared bins. The legend
    gives each sample's count; values beyond the bins are gathered in the end bins.

    Args:
        real, fake: property name -> (N,) values (NaN and entries with ``valid == 0`` are left out);
            a ``valid`` key is not drawn but its generated share is shown in the title, and on every
            panel when no generated sample is valid.
        names: properties to draw (default: every key but ``valid``).
        title: figure title.
        units: property name -> unit for the x label (e.g. ``{"area": "cm²"}``).
    """
    units = units or {}
    names = [k for k in (names or real) if k != "valid"]
    ok_r = np.asarray(real["valid"]) == 1 if "valid" in real else None
    ok_f = np.asarray(fake["valid"]) == 1 if "valid" in fake else None
    cols = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.7 * rows + 0.6), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        a, b = np.asarray(real[name], dtype=float), np.asarray(fake[name], dtype=float)
        a = a[np.isfinite(a) & (True if ok_r is None else ok_r)]
        b = b[np.isfinite(b) & (True if ok_f is None else ok_f)]
        both = np.concatenate([a, b])
        ax.set_xlabel(f"{name} [{units[name]}]" if name in units else name, fontsize=8)
        ax.set_ylabel("% of the sample", fontsize=8)
        ax.tick_params(labelsize=7)
        if b.size == 0 and ok_f is not None:
            ax.text(0.5, 0.5, "no valid generated sample", ha="center", va="center", color=FAKE, fontsize=8,
                    transform=ax.transAxes, bbox={"facecolor": "white", "edgecolor": FAKE})
        if both.size == 0:
            continue
        # The data's full range, widened to the bulk of the generated values (outliers pile up at the edges).
        lo, hi = np.quantile(b, [0.005, 0.995]) if b.size else (np.inf, -np.inf)
        lo, hi = (min(lo, a.min()), max(hi, a.max())) if a.size else (lo, hi)
        samples = ((a, REAL, f"data ({a.size})"), (b, FAKE, f"generated ({b.size})"))
        if _is_count(both):
            values = np.arange(np.floor(lo), np.ceil(hi) + 1)
            for k, (v, color, label) in enumerate(samples):
                if v.size:
                    share = [100.0 * np.mean(np.clip(np.round(v), values[0], values[-1]) == x) for x in values]
                    ax.bar(values + (k - 0.5) * 0.4, share, width=0.4, color=color, alpha=0.8, label=label)
            ax.xaxis.get_major_locator().set_params(integer=True)
        else:
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 31)
            for v, color, label in samples:
                if v.size:
                    ax.hist(np.clip(v, bins[0], bins[-1]), bins=bins, weights=np.full(v.size, 100.0 / v.size),
                            histtype="step", color=color, label=label, linewidth=1.4)
        ax.legend(fontsize=6, loc="upper right", frameon=False)
    if ok_f is not None and len(ok_f):
        title = f"{title}  " if title else ""
        title += f"generated samples post-processed into a valid object: {100 * ok_f.mean():.1f} %"
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def beta_curve(schedule, epochs: float, points: int = 500):
    """The KL weight ``schedule(epoch)`` over ``[0, epochs]`` (the black line of van Beek 2023 (leaf digital
    twin) Fig. 10)."""
    t = np.linspace(0.0, float(epochs), points)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(t, [schedule(e) for e in t], color="black")
    ax.set_xlabel("epoch")
    ax.set_ylabel("beta")
    ax.set_title("KL weight schedule")
    fig.tight_layout()
    return fig
