"""Fully connected blocks.

Every generative family builds its networks from partials called with the data's shape, so no
shape is written twice in the configs:

* decoders / generators: ``net(in_features=L + C, out_shape=shape)`` maps ``(B, L + C) -> (B, *shape)``;
* encoders / critics: ``net(in_shape=shape, cond_dim=C, out_features=K)`` maps ``(x, c) -> (B, K)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "softplus": nn.Softplus,
}


def activation(name: str | None) -> nn.Module:
    """Returns the activation module called ``name`` (``None`` or ``"identity"`` gives identity)."""
    if name is None or name == "identity":
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class MLP(nn.Sequential):
    """A multilayer perceptron ``Linear -> act -> ... -> Linear -> out_act``.

    Args:
        in_features: Input width.
        out_features: Output width.
        hidden: Hidden widths, e.g. ``[32, 64, 64, 64, 128]``.
        activation: Hidden activation name (see ``ACTIVATIONS``).
        out_activation: Output activation name, or ``None``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        out_activation: str | None = None,
    ):
        layers: list[nn.Module] = []
        widths = [in_features, *hidden]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), globals()["activation"](activation)]
        layers.append(nn.Linear(widths[-1], out_features))
        if out_activation is not None:
            layers.append(globals()["activation"](out_activation))
        super().__init__(*layers)


class MLPDecoder(nn.Module):
    """Maps a flat code ``(B, in_features)`` to samples ``(B, *out_shape)``.

    Used as GAN generator and VAE decoder. ``head`` is an optional module applied to the flat
    output (for instance the TPC output activation).
    """

    def __init__(
        self,
        in_features: int,
        out_shape: Sequence[int],
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
        out_activation: str | None = None,
        head: nn.Module | None = None,
    ):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.net = MLP(in_features, math.prod(self.out_shape), hidden, activation, out_activation)
        self.head = head if head is not None else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(z)).view(-1, *self.out_shape)


class MLPEncoder(nn.Module):
    """Maps samples ``(B, *in_shape)`` and optional conditions ``(B, C)`` to ``(B, out_features)``.

    Used as GAN critic (``out_features=1``) and VAE encoder (``out_features=2 * latent_dim``).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_features: int,
        cond_dim: int = 0,
        hidden: Sequence[int] = (64, 64),
        activation: str = "relu",
    ):
        super().__init__()
        self.net = MLP(math.prod(in_shape) + cond_dim, out_features, hidden, activation)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        h = x.flatten(1)
        if c is not None:
            h = torch.cat([h, c], dim=1)
        return self.net(h)
