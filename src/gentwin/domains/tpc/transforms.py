"""Amplitude scaling of pad responses: ``log10(1 + A)`` and its inverse."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def log_scale(x: np.ndarray) -> np.ndarray:
    """Baseline amplitude scaling y = log10(1 + x) (TPC-FastSim ``scalers.Logarithmic``)."""
    return np.log1p(x) / np.log(10.0)


def log_unscale(y: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`log_scale`: x = 10**y - 1."""
    return np.expm1(y * np.log(10.0))


class LogScale(nn.Module):
    """Amplitude scaler y = log10(1 + x) of the baseline, with its exact inverse.

    ``forward`` maps data space (amplitudes >= 0) to model space; ``inverse`` maps back. An amplitude
    of 1 (about the zero-suppression threshold) is y = log10(2), the threshold T of the generator's
    output activation.
    """

    def fit(self, x: torch.Tensor) -> LogScale:
        """Nothing to fit; refuses data outside the domain x > -1 (``transforms`` contract)."""
        if (x <= -1).any():
            raise ValueError(f"LogScale needs amplitudes > -1, the data hold {x.min().item():.4g}")
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x) / math.log(10.0)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.expm1(y * math.log(10.0))

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """log |d forward / dx| summed over each sample's cells, (B,): flows' data-space densities."""
        return -(torch.log1p(x) + math.log(math.log(10.0))).flatten(1).sum(1)


# ----------------------------------------------------------------------------------------------
# Properties


class ConditionInputs(nn.Module):
    """The TPC datamodule's condition mapping as a module: track variables in data units to condition vectors.

    The export puts it in front of the model (``Sampler.with_inputs``), so that a simulation chain gives
    the variables of a digits file's ``params:`` line (``names``: degrees, time buckets, pads) rather
    than the scaled vectors. Each condition ``<v>_frac`` is the fractional part ``v - floor(v)`` of its
    variable (numpy's ``v % 1``, exact in float32), every other one the variable itself; then the
    baseline's affine scaling ``(c - shift) / scale`` (``TPCDataModule.condition_vectors``, which does
    the same in float64). Only gathers, floors and affine maps: it traces to ONNX and TorchScript.

    Args:
        cond_names: the dataset's conditions (``dataset.condition_names``).
        shift, scale: the affine scaling per condition.
    """

    def __init__(self, cond_names, shift, scale):
        super().__init__()
        self.cond_names = list(cond_names)
        variables = [n.removesuffix("_frac") for n in self.cond_names]
        #: The input columns: each condition's variable once, in the order of first use.
        self.names = list(dict.fromkeys(variables))
        frac = [n.endswith("_frac") for n in self.cond_names]
        self.register_buffer("index", torch.tensor([self.names.index(v) for v in variables], dtype=torch.long))
        self.register_buffer("frac", torch.tensor(frac, dtype=torch.bool))
        self.register_buffer("shift", torch.as_tensor(np.asarray(shift, np.float64), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float64), dtype=torch.float32))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        c = v[:, self.index]
        c = torch.where(self.frac, c - torch.floor(c), c)  # v % 1 where frac
        return (c - self.shift) / self.scale

    def example(self, r: torch.Tensor) -> torch.Tensor:
        """Variables ``(B, len(names))`` from standard normal ``r``: each spread as its scaled condition
        inverts (a variable used only through its fractional part: by 1 about 0)."""
        spread, centre = torch.ones(len(self.names)), torch.zeros(len(self.names))
        for i, name in enumerate(self.cond_names):
            if not name.endswith("_frac"):
                spread[self.names.index(name)], centre[self.names.index(name)] = self.scale[i], self.shift[i]
        return r * spread + centre

    def describe(self) -> list[dict]:
        """Per condition vector column: the variable, whether its fractional part, shift and scale."""
        return [{"name": n, "variable": n.removesuffix("_frac"), "fractional_part": n.endswith("_frac"),
                 "shift": float(s), "scale": float(k)}
                for n, s, k in zip(self.cond_names, self.shift.tolist(), self.scale.tolist(), strict=True)]
