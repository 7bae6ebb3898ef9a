"""Normalizing flows with exact likelihood, built by zuko (NICE, RealNVP, MAF; conditional)."""

from __future__ import annotations

import math

from gentwin.models.base import GenerativeModel


class Flow(GenerativeModel):
    """Maximum-likelihood training of a flow ``p(x | c)``.

    Args:
        flow: Partial ``(features, context) -> zuko.flows.Flow`` (``zuko.flows.NICE``, ``RealNVP``,
            ``MAF``...). Samples are flattened to ``features = prod(shape)``.
        **kwargs: ``GenerativeModel`` arguments.
    """

    def __init__(self, flow, **kwargs):
        super().__init__(**kwargs)
        self.flow = flow(features=math.prod(self.shape), context=self.cond_dim)

    def _dist(self, c):
        return self.flow(c)

    def log_prob(self, x, c=None):
        """Exact ``log p(x | c)`` in data space, ``(B,)``."""
        y = self.transform(x)
        return self._dist(c).log_prob(y.flatten(1)) + self.transform.log_abs_det_jacobian(x)

    def generate(self, n, c=None):
        dist = self._dist(c)
        y = dist.sample() if c is not None else dist.sample((n,))
        return y.view(n, *self.shape)

    def training_step(self, batch, batch_idx):
        xs, cs = batch
        x, c = xs[0], None if cs is None else cs[0]
        loss = -self._dist(c).log_prob(x.flatten(1)).mean()
        self.step(0, loss, "loss")
        self.log_step({"loss": loss.detach()})
