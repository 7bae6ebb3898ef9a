"""``dataset=<toy>``: one simulator of ``simulators.py`` by name."""

from __future__ import annotations

import numpy as np

from gentwin.data.base import ArrayDataModule, ConfigError
from gentwin.domains.toy.simulators import SIMULATORS


class ToyDataModule(ArrayDataModule):
    """A toy distribution by name with its parameters.

    Args:
        name: One of ``SIMULATORS``.
        params: Keyword parameters of that simulator.
        **kwargs: ``ArrayDataModule`` arguments (``n``, ``val_fraction``, ``batch_size``, ...).
    """

    def __init__(self, name: str, params: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        if name not in SIMULATORS:
            raise ConfigError(f"dataset.name must be one of {sorted(SIMULATORS)}, got {name!r}")
        self.name, self.params = name, dict(params or {})

    def build(self, rng):
        return SIMULATORS[self.name](self.n, rng, **self.params).astype(np.float32), None

    def figures(self, real, fake, c):
        from gentwin.plots.common import scatter_and_marginals

        return {"samples": scatter_and_marginals(real, fake, title=self.name)}
