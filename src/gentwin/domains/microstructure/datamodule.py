"""``dataset=microstructure``: simulated grain micrographs."""

from __future__ import annotations

from gentwin.data.images import ImageDataModule
from gentwin.errors import ConfigError


class MicrostructureDataModule(ImageDataModule):
    """RGB grain micrographs (Görmüş 2023 (microstructure VAE)),
    ``gentwin.domains.microstructure.simulator.simulate_microstructures``.

    Args:
        n: Images (Görmüş 2023: 1000).
        size: Image side in pixels (Görmüş 2023: 64).
        simulator: Further keyword arguments of ``simulate_microstructures``.
        **kwargs: ``ImageDataModule`` arguments.
    """

    property_units = {"grain_count": "count", "mean_grain_area": "px²", "boundary_fraction": "fraction of pixels"}

    def __init__(self, n: int = 1000, size: int = 64, simulator: dict | None = None, **kwargs):
        super().__init__(n=n, **kwargs)
        if size < 8:
            raise ConfigError(f"dataset.size must be >= 8, got {size}")
        self.size, self.simulator = size, dict(simulator or {})

    def build(self, rng):
        from gentwin.domains.microstructure.simulator import simulate_microstructures

        return simulate_microstructures(self.n, rng, size=self.size, **self.simulator), None

    def second_sample(self, n, rng):
        from gentwin.domains.microstructure.simulator import simulate_microstructures

        return simulate_microstructures(n, rng, size=self.size, **self.simulator)

    def image_properties(self, x):
        from gentwin.domains.microstructure.properties import microstructure_properties

        return microstructure_properties(x)


# --------------------------------------------------------------------------------------------
# Digits
# --------------------------------------------------------------------------------------------
