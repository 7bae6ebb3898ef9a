"""Coupling flows assembled from zuko's parts (couplings, MADE, base distributions).

zuko's own ``NICE`` class uses affine couplings (it is RealNVP); these builders give the models of
the reports (docs/references.md): NICE with additive couplings and a final diagonal scaling (Dinh et al., 2014), and
RealNVP whose log-scale is bounded by ``tanh`` (Dinh et al., 2017; Malchenko et al. 2022 (TPC fast simulation) §6.2.4
"an additional
layer with activation function tanh for S"). Conditions are concatenated to the unmasked half at
the input of each coupling network, as in Malchenko et al. 2022 §6.2.4. MAF is ``zuko.flows.MAF`` as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.distributions import Transform
from zuko.distributions import DiagNormal
from zuko.flows import Flow, GeneralCouplingTransform, UnconditionalDistribution, UnconditionalTransform
from zuko.transforms import AdditiveTransform, DependentTransform, MonotonicAffineTransform


class TanhAffineTransform(MonotonicAffineTransform):
    """``f(x) = exp(tanh(s)) * x + t``: a coupling's affine map with a tanh-bounded log-scale."""

    def __init__(self, shift: torch.Tensor, scale: torch.Tensor, **kwargs):
        Transform.__init__(self, **kwargs)
        self.shift = shift
        self.log_scale = torch.tanh(scale)
        self.scale = self.log_scale.exp()


def _diagonal_affine(shift: torch.Tensor, scale: torch.Tensor) -> Transform:
    """An elementwise affine map whose log-determinant sums over the feature axis."""
    return DependentTransform(MonotonicAffineTransform(shift, scale), 1)


def _masks(features: int, transforms: int) -> list[torch.Tensor]:
    return [torch.arange(features) % 2 == i % 2 for i in range(transforms)]


def _base(features: int) -> UnconditionalDistribution:
    return UnconditionalDistribution(DiagNormal, torch.zeros(features), torch.ones(features), buffer=True)


def nice(features: int, context: int = 0, transforms: int = 4,
         hidden_features: Sequence[int] = (64, 64), activation=None) -> Flow:
    """NICE: additive couplings on alternating masks, then a learned diagonal scaling.

    Args:
        features: Data width ``D`` (samples are flattened).
        context: Condition width ``C`` (0 when unconditional).
        transforms: Number of coupling layers.
        hidden_features: Widths of each coupling network.
    """
    kw = {"hidden_features": list(hidden_features)}
    if activation is not None:
        kw["activation"] = activation
    layers = [GeneralCouplingTransform(features, context, mask=m, univariate=AdditiveTransform, shapes=((),), **kw)
              for m in _masks(features, transforms)]
    scaling = UnconditionalTransform(_diagonal_affine, torch.zeros(features), torch.zeros(features))
    return Flow([*layers, scaling], _base(features))


def realnvp(features: int, context: int = 0, transforms: int = 4,
            hidden_features: Sequence[int] = (64, 64), tanh: bool = True, activation=None) -> Flow:
    """RealNVP: affine couplings on alternating masks, log-scale bounded by ``tanh`` (``tanh=True``).

    Args:
        features: Data width ``D`` (samples are flattened).
        context: Condition width ``C``.
        transforms: Number of coupling layers (Malchenko et al. 2022 Table 8: 2, 4, 6, 12).
        hidden_features: Widths of each coupling network (computing s and t together).
        tanh: Bound the log-scale with ``tanh``; ``False`` uses zuko's soft clamp.
    """
    kw = {"hidden_features": list(hidden_features)}
    if activation is not None:
        kw["activation"] = activation
    univariate = TanhAffineTransform if tanh else MonotonicAffineTransform
    layers = [GeneralCouplingTransform(features, context, mask=m, univariate=univariate, **kw)
              for m in _masks(features, transforms)]
    return Flow(layers, _base(features))
