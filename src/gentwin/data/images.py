"""The base of image datasets: images (N, C, H, W) in [0, 1], judged by their key properties."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from gentwin.data.base import ArrayDataModule
from gentwin.errors import ConfigError
from gentwin.metrics.properties import property_table

Properties = dict[str, np.ndarray]



class Affine(nn.Module):
    """Elementwise ``y = scale * x + shift``; the default maps [0, 1] images to a tanh's [-1, 1].

    Args:
        scale: Non-zero factor.
        shift: Offset added after scaling.
    """

    def __init__(self, scale: float = 2.0, shift: float = -1.0):
        super().__init__()
        if scale == 0 or not math.isfinite(scale) or not math.isfinite(shift):
            raise ValueError(f"Affine needs a finite non-zero scale and a finite shift, got {scale} and {shift}")
        self.scale, self.shift = float(scale), float(shift)

    def fit(self, x: torch.Tensor) -> Affine:
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self.shift) / self.scale

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_full((len(x),), x[0].numel() * math.log(abs(self.scale)) if len(x) else 0.0)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, shift={self.shift}"


# --------------------------------------------------------------------------------------------
# Metric entry and shared datamodule
# --------------------------------------------------------------------------------------------




class ImageDataModule(ArrayDataModule):
    """Base of the image datasets: properties, figures, summary table and TensorBoard progress.

    A subclass implements ``build(rng)`` and ``image_properties(x)``.

    Args:
        grid_every_n_steps: Steps between TensorBoard grids from fixed noise (``ImageProgress``);
            ``null`` for none.
        grid_size: Images per grid.
        **kwargs: ``ArrayDataModule`` arguments.
    """

    #: Units of the key properties, for figure axes.
    property_units: dict[str, str] = {}

    def __init__(self, grid_every_n_steps: int | None = 200, grid_size: int = 64, **kwargs):
        super().__init__(**kwargs)
        if grid_every_n_steps is not None and grid_every_n_steps < 1:
            raise ConfigError(f"dataset.grid_every_n_steps must be >= 1 or null, got {grid_every_n_steps}")
        self.grid_every_n_steps, self.grid_size = grid_every_n_steps, grid_size
        self._memo: tuple[np.ndarray, Properties] | None = None

    def image_properties(self, x: np.ndarray) -> Properties:
        raise NotImplementedError

    def properties(self, x: np.ndarray, c: np.ndarray | None = None) -> Properties:
        # ``evaluate`` computes the properties of the generated images, then ``figures`` draws them:
        # remember the last result so that post-processing runs once per image set.
        if self._memo is not None and self._memo[0] is x:
            return self._memo[1]
        props = self.image_properties(np.asarray(x))
        self._memo = (x, props)
        return props

    def to_rgb(self, images: np.ndarray) -> np.ndarray:
        """How the domain's images ``(N, C, H, W)`` are drawn, as RGB ``(N, H, W, 3)`` (figures and
        TensorBoard grids); default ``gentwin.plots.images.to_rgb`` (grey or RGB)."""
        from gentwin.plots.images import to_rgb

        return to_rgb(images)

    def pixel_size(self) -> tuple[float, str] | None:
        """The side of one pixel and its unit (``(0.2, "cm")``) for the figures' scale bar; ``None``: no scale."""
        return None

    def figures(self, real, fake, c):
        from gentwin.plots.images import property_histograms, sample_comparison

        fake_props = self.properties(fake)
        real_props = self.real_properties()
        return {"samples": sample_comparison(real, fake, rgb=self.to_rgb, pixel=self.pixel_size()),
                "properties": property_histograms(real_props, fake_props, units=self.property_units)}

    def summary(self, real: Properties, fake: Properties) -> str:
        floor = self.floor_properties()
        n = len(next(iter(real.values()))) if real else 0
        return property_table(real, fake, "key properties, held-out data vs generated:",
                              None if floor is None else {k: np.asarray(v)[:n] for k, v in floor.items()})

    def callbacks(self) -> list:
        if not self.grid_every_n_steps:
            return []
        from gentwin.data.image_progress import ImageProgress

        return [ImageProgress(self.grid_every_n_steps, self.grid_size, seed=self.seed, rgb=self.to_rgb)]


# --------------------------------------------------------------------------------------------
# Leaves
# --------------------------------------------------------------------------------------------
