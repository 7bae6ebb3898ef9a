"""Normalizing flows with exact likelihood, built by zuko (NICE, RealNVP, MAF; conditional)."""

from __future__ import annotations

import math

from gentwin.models.base import GenerativeModel, Sampler


class Flow(GenerativeModel):
    """Maximum-likelihood training of a flow ``p(x | c)``.

    Args:
        flow: Partial ``(features, context) -> zuko.flows.Flow`` (``zuko.flows.NICE``, ``RealNVP``,
            ``MAF``...). Samples are flattened to ``features = prod(shape)``.
        **kwargs: ``GenerativeModel`` arguments.
    """

    has_likelihood = True

    def __init__(self, flow, **kwargs):
        super().__init__(**kwargs)
        self.flow = flow(features=math.prod(self.shape), context=self.cond_dim)

    def _dist(self, c):
        return self.flow(c)

    def log_prob(self, x, c=None):
        """Exact ``log p(x | c)`` in data space, ``(B,)``."""
        y = self.transform(x)
        return self._dist(self.model_conditions(c)).log_prob(y.flatten(1)) + self.transform.log_abs_det_jacobian(x)

    def export_module(self) -> FlowSampler:
        return FlowSampler(self)

    def training_step(self, batch, batch_idx):
        xs, cs = batch
        x, c = xs[0], None if cs is None else cs[0]
        loss = -self._dist(c).log_prob(x.flatten(1)).mean()
        self.step(0, loss, "loss")
        self.log_step({"loss": loss.detach()})


class FlowSampler(Sampler):
    """``(z[, c]) -> x``: a flow's inverse transform for conditions ``c`` on the base noise ``z``
    (standard normal, ``prod(shape)`` wide).

    Args:
        model: The Flow.
    """

    family = "flow"

    def __init__(self, model: Flow):
        super().__init__(model, math.prod(model.shape))
        self.flow = model.flow

    @property
    def sequential_passes(self) -> int:
        """MAF inverts feature by feature: ``passes`` per autoregressive transform."""
        return sum(int(getattr(m, "passes", 0)) for m in self.flow.modules())

    def to_model_space(self, z, c=None, eps=None):
        return self.flow(c).transform.inv(z).reshape(z.shape[0], *self.shape)
