"""Networks of the baseline TPC WGAN-GP: the generator's output activation and the convolutional critic.

Reference: A. Maevskiy, F. Ratnikov, A. Zinchenko, V. Riabov, Eur. Phys. J. C 81, 599 (2021), and
its code TPC-FastSim (``models/configs/baseline_fc_8x16_kinked.yaml``, ``models/nn.py``); Malchenko et al. 2022 (TPC
fast simulation),
eq. (1) and section 4.3.3. The generator itself is a plain MLP [32, 64, 64, 64, 128] with ELU to
8 * 16 outputs followed by :class:`TPCOutputActivation`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gentwin.nets.mlp import MLP


def tpc_output_activation(
    x: torch.Tensor, delta: float = 0.01, alpha: float = 0.1, T: float = math.log10(2.0)
) -> torch.Tensor:
    """Output activation of the baseline generator, Malchenko et al. 2022 eq. (1).

    f(x) = alpha T exp(x)                      for x < 0,
           T (alpha + (1 - alpha) x / delta)   for 0 <= x <= delta,
           T - delta + x                       for x > delta.

    Continuous (alpha T at 0, T at delta); with the log10(1 + A) scaling, T = log10(2) is an
    amplitude of 1, so the steep middle piece lets the generator jump from below to above the
    zero-suppression threshold, and outputs stay positive.

    Args:
        x: any shape.
        delta: width of the steep piece.
        alpha: value at 0 as a fraction of T.
        T: threshold, in model (log10(1 + A)) space.
    """
    low = alpha * T * torch.exp(torch.clamp(x, max=0.0))  # clamp: no inf (and NaN gradient) from x > 0
    mid = T * (alpha + (1.0 - alpha) * x / delta)
    high = T - delta + x
    return torch.where(x < 0, low, torch.where(x <= delta, mid, high))


class TPCOutputActivation(nn.Module):
    """:func:`tpc_output_activation` as a module: the baseline generator's last layer (TPC-FastSim's
    ``CustomActivation``), positive outputs that can jump across the zero-suppression threshold."""

    def __init__(self, delta: float = 0.01, alpha: float = 0.1, T: float = math.log10(2.0)):
        super().__init__()
        self.delta, self.alpha, self.T = delta, alpha, T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tpc_output_activation(x, self.delta, self.alpha, self.T)

    def extra_repr(self) -> str:
        return f"delta={self.delta}, alpha={self.alpha}, T={self.T:.6g}"


class SparseDropout(nn.Module):
    """Dropout for small rates that draws one random number per dropped unit, not one per unit.

    ``nn.Dropout`` draws a Bernoulli variate for every element, a noticeable share of a TPC critic step
    on the CPU (docs/benchmarks.md). Here the dropped positions are a Bernoulli(p) process built from geometric gaps
    (``floor(log U / log(1 - p))``), so each element is still dropped independently with
    probability ``p`` and survivors are scaled by ``1 / (1 - p)``, exactly as ``nn.Dropout``, with
    far fewer random numbers for small ``p``. An identity in eval mode or with ``p = 0``.

    Off the CPU it is ``torch.nn.functional.dropout`` (the same distribution): the geometric gaps
    need the host to read where they end (a device synchronisation in every forward pass), and a
    GPU draws one random number per element in a single kernel anyway. ``sparse`` forces either
    path (``None``: sparse on the CPU only).
    """

    sparse: bool | None = None

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout rate must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if not (x.device.type == "cpu" if self.sparse is None else self.sparse):
            return F.dropout(x, self.p, training=True)
        n = x.numel()
        log_q = math.log1p(-self.p)
        positions = []
        end = -1
        while True:  # usually one pass: enough gaps for mean + 6 sd of the drop count
            k = int(n * self.p + 6 * math.sqrt(n * self.p) + 16)
            u = torch.rand(k, device=x.device).clamp_min_(1e-30)
            pos = end + 1 + torch.cumsum(torch.floor(torch.log(u) / log_q).long(), 0) + torch.arange(k, device=x.device)
            positions.append(pos[pos < n])
            end = int(pos[-1])
            if end >= n:
                break
        mask = torch.full((n,), 1.0 / (1.0 - self.p), dtype=x.dtype, device=x.device)
        mask[torch.cat(positions)] = 0
        return x * mask.view_as(x)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MaxPoolTime(nn.Module):
    """``nn.MaxPool2d((1, 2))`` as a reshape and ``amax``: the same values, 4x faster on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (x.shape[-1] // 2, 2)).amax(-1)


class TPCCritic(nn.Module):
    """Convolutional critic of the baseline: conditions tiled as image channels, score per sample.

    The condition vector is tiled over the image as ``cond_dim`` extra channels; six convolutions
    (filters 16, 16, 32, 32, 64, 64; kernels 3, 3, 3, 3, 3, 2; 'same' for the first four, 'valid'
    for the last two; ELU and dropout after each; max-pooling (1, 2) after the second and 2 after the
    fourth) take an 8 x 16 image to 64 features; these, concatenated with the conditions, go through
    a dense layer of 128 (ELU) to one score. With ``cond_dim=5`` that is 61,121 parameters
    (52,032 convolutional + 9,089 dense), as TPC-FastSim's ``discriminator``.

    The constructor follows the critic contract of ``gentwin.models.gan.GAN``
    (``in_shape, cond_dim, out_features``); ``out_features`` > 1 gives the Cramér GAN's feature map
    (256), and ``hidden``/``activation`` (the keys of the MLP critics) set the dense layers.

    Args:
        in_shape: (pads, time buckets).
        cond_dim: size of the condition vector.
        out_features: outputs per sample (1: a score).
        hidden: widths of the dense layers on [conv features, conditions] (``[128]`` in the baseline).
        activation: their activation (``gentwin.nets.mlp.ACTIVATIONS``).
        dropout: dropout rate after each convolution (0.02 in the baseline).
    """

    def __init__(self, in_shape: tuple[int, int] = (8, 16), cond_dim: int = 5, out_features: int = 1,
                 hidden: tuple[int, ...] = (128,), activation: str = "elu", dropout: float = 0.02):
        super().__init__()
        self.cond_dim = int(cond_dim)
        self.image_shape = tuple(int(s) for s in in_shape)
        filters = (16, 16, 32, 32, 64, 64)
        kernels = (3, 3, 3, 3, 3, 2)
        paddings = ("same", "same", "same", "same", "valid", "valid")
        poolings = (None, (1, 2), None, (2, 2), None, None)
        layers: list[nn.Module] = []
        channels = self.cond_dim + 1
        for n_filters, kernel, padding, pool in zip(filters, kernels, paddings, poolings, strict=True):
            layers += [nn.Conv2d(channels, n_filters, kernel, padding=padding), nn.ELU(), SparseDropout(dropout)]
            if pool is not None:
                layers.append(MaxPoolTime() if pool == (1, 2) else nn.MaxPool2d(pool))
            channels = n_filters
        layers.append(nn.Flatten())
        self.conv = nn.Sequential(*layers)
        with torch.no_grad():
            n_conv = self.conv(torch.zeros(1, self.cond_dim + 1, *self.image_shape)).shape[1]
        self.head = MLP(n_conv + self.cond_dim, out_features, list(hidden), activation)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Critic scores.

        Args:
            x: images in model space, (B, P, T), (B, 1, P, T) or flat (B, P * T).
            c: conditions, (B, cond_dim).

        Returns:
            (B,) scores, or (B, out_features) features when ``out_features`` > 1.
        """
        x = x.reshape(len(x), 1, *self.image_shape)
        tiled = c[:, :, None, None].expand(-1, -1, *self.image_shape)
        h = self.conv(torch.cat([tiled, x], dim=1))
        return self.head(torch.cat([h, c], dim=1)).squeeze(1)


class ZeroSuppression(nn.Module):
    """Model-space ``y = log10(1 + A)`` set to 0 where the amplitude ``A`` is below ``threshold``: the
    zero suppression of the MPD readout (recorded cells hold at least 0.90,
    ``gentwin.domains.tpc.sparsity``), for models whose outputs are smooth (flow matching)."""

    def __init__(self, threshold: float = 0.9):
        super().__init__()
        self.threshold = threshold
        # LogScale's own float32 rounding: an amplitude of exactly ``threshold`` stays a hit.
        self.level = float(torch.log1p(torch.tensor(threshold)) / math.log(10.0))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return torch.where(y >= self.level, y, torch.zeros_like(y))

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"
