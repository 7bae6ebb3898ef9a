"""Invertible data transforms, fitted on the training split and stored with the model.

Transforms are ``nn.Module``s whose fitted statistics are buffers, so a checkpoint carries them and
``sample`` can return data-space values on a machine without the training data. ``forward`` maps
data space to model space, ``inverse`` maps back. ``fit`` checks the data lie in the domain where
the transform is invertible and refuses clearly otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Identity(nn.Module):
    """No transform."""

    def fit(self, x: torch.Tensor) -> Identity:
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x))


class Standardize(nn.Module):
    """Per-feature ``(x - mean) / std`` over the batch axis.

    A feature with zero spread (Calvo Ordoñez's (2022, generative ML for particle physics) variance-0 Gaussian) gets
    ``std = 1`` so the map stays
    invertible instead of dividing by zero.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(()))
        self.register_buffer("std", torch.ones(()))

    def fit(self, x: torch.Tensor) -> Standardize:
        std = x.std(dim=0, unbiased=False)
        self.mean = x.mean(dim=0)
        self.std = torch.where(std > 1e-12, std, torch.ones_like(std))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std + self.mean

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        return -self.std.log().sum().expand(len(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The fitted statistics take the data's shape, unknown when the module is constructed.
        for name in ("mean", "std"):
            if prefix + name in state_dict:
                setattr(self, name, state_dict[prefix + name].clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


_LN10 = 2.302585092994046
_STEPS = {
    # name: (forward, inverse, domain check on the input, description, log |d forward / dx|)
    "log": (torch.log, torch.exp, lambda x: x > 0, "x > 0", lambda x: -torch.log(x)),
    "sqrt": (torch.sqrt, torch.square, lambda x: x > 0, "x > 0", lambda x: -torch.log(2 * torch.sqrt(x))),
    "exp": (torch.exp, torch.log, lambda x: torch.isfinite(torch.exp(x)), "exp(x) finite", lambda x: x),
    "log1p": (torch.log1p, torch.expm1, lambda x: x > -1, "x > -1", lambda x: -torch.log1p(x)),
    "log10p": (lambda x: torch.log10(1 + x), lambda y: 10**y - 1, lambda x: x > -1, "x > -1",
               lambda x: -torch.log((1 + x) * _LN10)),
}


class Elementwise(nn.Module):
    """A chain of elementwise maps, e.g. ``["log", "sqrt", "exp"]`` (Calvo Ordoñez 2022 §5.1), then a shift.

    ``y = step_k(...step_1(x + shift))``. Calvo Ordoñez 2022 §5.1 dropped its log / sqrt / exp chain because
    negative values lost their sign ("multiplicity of negative values"): such a chain is not
    invertible on that data, so ``fit`` refuses it and names the step, the feature and the
    offending value, instead of silently folding the data.

    Args:
        steps: Names from ``log``, ``sqrt``, ``exp``, ``log1p``, ``log10p`` applied in order.
        shift: Added to ``x`` before the first step.
    """

    def __init__(self, steps: Sequence[str] = ("log",), shift: float = 0.0):
        super().__init__()
        unknown = [s for s in steps if s not in _STEPS]
        if unknown:
            raise ValueError(f"unknown transform step(s) {unknown}; choose from {sorted(_STEPS)}")
        self.steps, self.shift = list(steps), shift

    def fit(self, x: torch.Tensor) -> Elementwise:
        h = x + self.shift
        for name in self.steps:
            fwd, _, ok, domain, _ = _STEPS[name]
            bad = ~ok(h)
            if bad.any():
                flat = bad.flatten(1).any(0).nonzero().flatten().tolist()
                raise ValueError(
                    f"transform step {name!r} needs {domain} but feature(s) {flat[:5]} hold "
                    f"{h[bad].min().item():.4g}: not invertible on this data "
                    f"(raise dataset.transform.shift or drop the step)"
                )
            h = fwd(h)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + self.shift
        for name in self.steps:
            h = _STEPS[name][0](h)
        return h

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for name in reversed(self.steps):
            y = _STEPS[name][1](y)
        return y - self.shift

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        h, total = x + self.shift, x.new_zeros(x.shape)
        for name in self.steps:
            total = total + _STEPS[name][4](h)
            h = _STEPS[name][0](h)
        return total.flatten(1).sum(1)


class Chain(nn.Module):
    """Transforms applied in order, e.g. an elementwise chain then standardisation."""

    def __init__(self, *transforms: nn.Module):
        super().__init__()
        self.parts = nn.ModuleList(transforms)

    def fit(self, x: torch.Tensor) -> Chain:
        for t in self.parts:
            t.fit(x)
            x = t(x)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.parts:
            x = t(x)
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for t in reversed(self.parts):
            y = t.inverse(y)
        return y

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        total = x.new_zeros(len(x))
        for t in self.parts:
            total = total + t.log_abs_det_jacobian(x)
            x = t(x)
        return total
