"""Velocity fields ``v(x, t, c)`` for flow matching (``gentwin.models.flow_matching``).

The family builds its network from a partial called with the data's shape, as the other families do:
``net(in_shape=shape, cond_dim=C)`` maps ``(x (B, *shape), t (B,), c (B, C) or None) -> (B, *shape)``.

* ``VelocityMLP``: vectors (toys, any array), the sample flattened beside a sinusoidal embedding of
  ``t`` and the conditions, concatenated once at the input;
* ``VelocityResNet``: vectors whose distribution depends strongly on the conditions (TPC responses):
  residual blocks, each normalised and then scaled and shifted by an embedding of ``t`` and the
  conditions (FiLM, Perez et al. 2018), so every layer sees them;
* ``VelocityUNet``: images ``(C, H, W)``, a small convolutional U-Net whose blocks take ``t`` and the
  conditions as a per-channel shift.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from gentwin.nets.mlp import MLP
from gentwin.nets.mlp import activation as named_activation


class SinusoidalEmbedding(nn.Module):
    """``t (B,) -> (B, dim)``: sines and cosines of ``t`` at ``dim / 2`` frequencies, geometric from
    1 to ``max_frequency`` (the transformer position code, Vaswani et al. 2017, on ``t`` in [0, 1]).

    Args:
        dim: Output width (even).
        max_frequency: Highest angular frequency.
    """

    def __init__(self, dim: int = 32, max_frequency: float = 1000.0):
        super().__init__()
        if dim < 2 or dim % 2:
            raise ValueError(f"time embedding width must be even and >= 2, got {dim}")
        half = dim // 2
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(max_frequency), half)), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        a = t.reshape(-1, 1) * self.freqs
        return torch.cat([a.sin(), a.cos()], dim=1)


class VelocityMLP(nn.Module):
    """``[x, emb(t), c] -> v`` through an MLP, for samples of any shape (flattened).

    Args:
        in_shape: One sample's shape.
        cond_dim: Condition width (0: unconditional).
        hidden: Hidden widths.
        activation: Hidden activation name (``nets.mlp.ACTIVATIONS``).
        time_dim: Width of the time embedding.
    """

    def __init__(self, in_shape: Sequence[int], cond_dim: int = 0, hidden: Sequence[int] = (128, 128, 128),
                 activation: str = "silu", time_dim: int = 32):
        super().__init__()
        self.shape = tuple(in_shape)
        self.embed = SinusoidalEmbedding(time_dim)
        d = math.prod(self.shape)
        self.net = MLP(d + time_dim + cond_dim, d, hidden, activation)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = [x.flatten(1), self.embed(t)] + ([] if c is None else [c])
        return self.net(torch.cat(h, dim=1)).view(-1, *self.shape)


class _FiLMBlock(nn.Module):
    """``h + W2 act(W1 (LN(h) (1 + scale(e)) + shift(e)))``: a pre-norm residual block modulated by ``e``."""

    def __init__(self, width: int, emb_dim: int, act: str):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(emb_dim, 2 * width)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.lin1, self.act, self.lin2 = nn.Linear(width, width), named_activation(act), nn.Linear(width, width)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(e).chunk(2, dim=1)
        return h + self.lin2(self.act(self.lin1(self.norm(h) * (1 + scale) + shift)))


class VelocityResNet(nn.Module):
    """``(x, t, c) -> v`` for vectors: an input layer, residual blocks that each take ``t`` and the
    conditions through a learned scale and shift of their normalised input (FiLM), an output layer.

    The embedding ``e = MLP([emb(t), c])`` is computed once per call; each block maps it to its own
    scale and shift (initialised at zero: every block starts as the identity on its input).

    Args:
        in_shape: One sample's shape (flattened).
        cond_dim: Condition width (0: unconditional).
        hidden: Width of the residual stream, one block per entry (all equal, e.g. ``[256, 256, 256]``).
        activation: Activation name.
        time_dim: Width of the time embedding.
        emb_dim: Width of the joint embedding of time and conditions.
    """

    def __init__(self, in_shape: Sequence[int], cond_dim: int = 0, hidden: Sequence[int] = (256, 256, 256),
                 activation: str = "silu", time_dim: int = 32, emb_dim: int = 128):
        super().__init__()
        widths = [int(w) for w in hidden]
        if not widths or len(set(widths)) != 1:
            raise ValueError(f"VelocityResNet needs equal widths (one per block), got {list(hidden)}")
        self.shape, width, d = tuple(in_shape), widths[0], math.prod(in_shape)
        self.time = SinusoidalEmbedding(time_dim)
        self.embed = MLP(time_dim + cond_dim, emb_dim, [emb_dim], activation, out_activation=activation)
        self.inp = nn.Linear(d, width)
        self.blocks = nn.ModuleList(_FiLMBlock(width, emb_dim, activation) for _ in widths)
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, d))

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        e = self.time(t)
        e = self.embed(e if c is None else torch.cat([e, c], dim=1))
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, e)
        return self.out(h).view(-1, *self.shape)


class _Block(nn.Module):
    """``conv -> + shift(emb) -> act -> conv -> act``, a residual connection when widths agree."""

    def __init__(self, cin: int, cout: int, emb_dim: int, act: str):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(cin, cout, 3, padding=1), nn.Conv2d(cout, cout, 3, padding=1)
        self.shift = nn.Linear(emb_dim, cout)
        self.act1, self.act2 = named_activation(act), named_activation(act)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.act1(self.conv1(x) + self.shift(emb)[:, :, None, None])
        return self.skip(x) + self.act2(self.conv2(h))


class VelocityUNet(nn.Module):
    """A small U-Net ``(x, t, c) -> v`` for images ``(C, H, W)`` of any size.

    One resolution per width in ``hidden``, halved by strided convolutions and restored by nearest
    upsampling to the skip's own size (odd sides such as 7 need no padding); the time embedding and
    the conditions enter every block as a per-channel shift. ``hidden`` and ``activation`` mean what
    they mean for ``VelocityMLP``, so a dataset's specialisation swaps one net for the other.

    Args:
        in_shape: ``(C, H, W)``.
        cond_dim: Condition width (0: unconditional).
        hidden: Channels per resolution, e.g. ``[32, 64]``.
        activation: Activation name.
        time_dim: Width of the time embedding.
    """

    def __init__(self, in_shape: Sequence[int], cond_dim: int = 0, hidden: Sequence[int] = (32, 64),
                 activation: str = "silu", time_dim: int = 32):
        super().__init__()
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ValueError(f"VelocityUNet needs images (C, H, W), got {tuple(in_shape)}")
        if not hidden:
            raise ValueError("VelocityUNet needs at least one width in hidden")
        ch, widths = int(in_shape[0]), [int(w) for w in hidden]
        self.embed = nn.Sequential(SinusoidalEmbedding(time_dim), nn.Linear(time_dim, time_dim),
                                   named_activation(activation))
        emb = time_dim + cond_dim
        self.inp = nn.Conv2d(ch, widths[0], 3, padding=1)
        self.down = nn.ModuleList(_Block(w_in, w, emb, activation)
                                  for w_in, w in zip([widths[0], *widths[:-1]], widths, strict=True))
        self.pool = nn.ModuleList(nn.Conv2d(w, w, 3, stride=2, padding=1) for w in widths[:-1])
        self.mid = _Block(widths[-1], widths[-1], emb, activation)
        self.up = nn.ModuleList(_Block(w + w_skip, w_skip, emb, activation)
                                for w, w_skip in zip(widths[1:], widths[:-1], strict=True))
        self.out = nn.Conv2d(widths[0], ch, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        e = self.embed(t)
        e = e if c is None else torch.cat([e, c], dim=1)
        h, skips = self.inp(x), []
        for i, block in enumerate(self.down):
            h = block(h, e)
            if i < len(self.pool):
                skips.append(h)
                h = self.pool[i](h)
        h = self.mid(h, e)
        for block in reversed(self.up):
            s = skips.pop()
            h = F.interpolate(h, size=s.shape[-2:], mode="nearest")
            h = block(torch.cat([h, s], dim=1), e)
        return self.out(h)
