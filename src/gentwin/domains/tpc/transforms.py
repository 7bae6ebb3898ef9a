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
