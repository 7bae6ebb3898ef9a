"""``dataset=leaves``: simulated half-leaves or a user's geometry file, as 2-channel images."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gentwin.data.images import ImageDataModule
from gentwin.errors import ConfigError


class LeafDataModule(ImageDataModule):
    """Half-leaf images (leaf, vein) of van Beek 2023 (leaf digital twin) §3.2, simulated or from a user's geometry
    file.

    Args:
        n: Half-leaf images to simulate (``ceil(n / 2)`` leaves, each cut in two); ignored with
            ``geometry`` (all its leaves are used).
        size: Image side in pixels.
        geometry: A GeoJSON/WKT file of leaves (``gentwin.domains.leaves.io.read_geometry``), or ``None``
            to simulate.
        halve: Cut each leaf of ``geometry`` along its main vein into two half-leaves (the file holds
            whole leaves); ``False`` when it holds half-leaves already.
        extent: Window ``(xmin, ymin, xmax, ymax)`` in cm shown by the images; ``None`` for
            ``HALF_LEAF_EXTENT`` (10 x 10 cm).
        vein_width: Vein width in pixels.
        threshold: Post-processing threshold of both channels.
        simulator: Keyword arguments of ``simulate_leaves``.
        **kwargs: ``ImageDataModule`` arguments.
    """

    property_units = {"area": "cm²", "height": "cm", "width": "cm", "n_holes": "count", "hole_area": "cm²",
                      "n_veins": "count", "vein_length": "cm", "perimeter": "cm"}

    def __init__(self, n: int | None = 1000, size: int = 64, geometry: str | None = None, halve: bool = True,
                 extent=None, vein_width: float = 1.5, threshold: float = 0.5, simulator: dict | None = None,
                 **kwargs):
        super().__init__(n=n, **kwargs)
        from gentwin.domains.leaves.geometry import HALF_LEAF_EXTENT

        if size < 8:
            raise ConfigError(f"dataset.size must be >= 8, got {size}")
        self.size, self.geometry, self.halve = size, geometry, halve
        self.extent = tuple(float(v) for v in extent) if extent is not None else HALF_LEAF_EXTENT
        self.vein_width, self.threshold = vein_width, threshold
        self.simulator = dict(simulator or {})

    def leaves(self, rng: np.random.Generator) -> list:
        """The half-leaves as geometry: from ``geometry`` or simulated."""
        from gentwin.domains.leaves.geometry import half_leaves
        from gentwin.domains.leaves.io import read_geometry
        from gentwin.domains.leaves.simulator import simulate_leaves

        if self.geometry is None:
            return half_leaves(simulate_leaves(math.ceil(self.n / 2), rng, **self.simulator))[: self.n]
        path = Path(self.geometry).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"dataset.geometry: {path} does not exist (a GeoJSON or WKT file of leaves)")
        leaves = read_geometry(path)
        if not self.halve:
            return leaves
        for i, leaf in enumerate(leaves):
            if leaf.main_vein is None:
                raise ValueError(f"{path}: leaf {i}: no main vein to cut along "
                                 f"(set dataset.halve=false if the file holds half-leaves)")
        return half_leaves(leaves)

    def build(self, rng):
        from gentwin.domains.leaves.raster import rasterize

        halves = self.leaves(rng)
        if len(halves) < 2:
            raise ValueError(f"{self.geometry}: needs at least 2 half-leaves, got {len(halves)}")
        return rasterize(halves, self.size, self.extent, self.vein_width), None

    def second_sample(self, n, rng):
        """``n`` newly simulated half-leaves, rasterised as the data; ``None`` for a user's geometry."""
        if self.geometry is not None:
            return None
        from gentwin.domains.leaves.geometry import half_leaves
        from gentwin.domains.leaves.raster import rasterize
        from gentwin.domains.leaves.simulator import simulate_leaves

        halves = half_leaves(simulate_leaves(math.ceil(n / 2), rng, **self.simulator))[:n]
        return rasterize(halves, self.size, self.extent, self.vein_width)

    def to_rgb(self, images):
        """Leaf green on white, veins brown (``gentwin.domains.leaves.figures``)."""
        from gentwin.domains.leaves.figures import leaf_rgb

        return leaf_rgb(images)

    def pixel_size(self):
        from gentwin.domains.leaves.raster import pixel_size

        return pixel_size(self.size, self.extent), "cm"

    def image_properties(self, x):
        from gentwin.domains.leaves.properties import image_properties

        return image_properties(x, self.threshold, self.extent)

    def writers(self) -> dict:
        return {".geojson": self.write_geometry, ".wkt": self.write_geometry}

    def write_geometry(self, images: np.ndarray, path: Path) -> str:
        """Post-processes ``images`` into leaf geometry and writes the valid ones to ``path`` (GeoJSON or
        WKT by its suffix; ``dataset.geometry=<path>`` reads it back, ``dataset.halve=false``).

        Returns:
            A line saying how many images gave valid leaves and why the others failed.
        """
        import json
        from collections import Counter

        from gentwin.atomic import write_text
        from gentwin.domains.leaves.io import to_geojson, to_wkt
        from gentwin.domains.leaves.postprocess import postprocess_all

        results = postprocess_all(images, self.threshold, self.extent, return_reason=True)
        leaves = [leaf for leaf, _ in results if leaf is not None]
        text = json.dumps(to_geojson(leaves)) if Path(path).suffix == ".geojson" else to_wkt(leaves)
        write_text(path, text)  # through a temporary file beside it: no partial file on failure
        failed = Counter(reason for leaf, reason in results if leaf is None)
        why = ", ".join(f"{reason} {k}" for reason, k in failed.most_common())
        return (f"{len(leaves)} of {len(results)} images post-processed into valid leaves, written to {path}"
                + (f"; the others failed on: {why}" if why else ""))


# --------------------------------------------------------------------------------------------
# Microstructures
# --------------------------------------------------------------------------------------------
