"""The detector layout of a voxelised calorimeter: CaloChallenge's binning XML, or a list of layers.

CaloChallenge ships its geometry as ``<Bins><Bin pid=.. name=..><Layer id=.. r_edges="0,5,.."
n_bin_alpha=../>..</Bin></Bins>``: concentric layers along the particle's direction, each cut into
radial bins (``r_edges``, in mm) and equal alpha (polar angle) bins. A layer whose ``r_edges`` is
``"0"`` holds no voxels. The voxel order is that of CaloChallenge's own reader
(``code/XMLHandler.py`` of github.com/CaloChallenge/homepage, ``fill_r_a_lists``): layers in file
order; within a layer the alpha bins are the outer index and the radial bins the inner one (a layer's
voxels reshape to ``(n_alpha, n_r)``). The alpha bin centres are the midpoints of
``linspace(-pi, pi, n_alpha + 1)`` (a layer of one alpha bin sits at alpha = 0), and a voxel's eta and
phi are ``r_mid * cos(alpha)`` and ``r_mid * sin(alpha)`` (``SetEtaAndPhiFromPolar``).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gentwin.errors import ConfigError


@dataclass(frozen=True)
class Layer:
    """One layer with voxels: its ``id``, radial bin edges and number of alpha bins."""

    id: int
    r_edges: tuple[float, ...]
    n_alpha: int

    @property
    def n_r(self) -> int:
        return len(self.r_edges) - 1

    @property
    def size(self) -> int:
        return self.n_r * self.n_alpha

    def eta_phi(self) -> tuple[np.ndarray, np.ndarray]:
        """Each voxel's eta and phi (alpha outer, r inner), ``(size,)`` each."""
        r = np.asarray(self.r_edges, np.float64)
        r_mid = (r[:-1] + r[1:]) / 2
        alpha_edges = np.linspace(-math.pi, math.pi, self.n_alpha + 1)
        alpha = (alpha_edges[:-1] + alpha_edges[1:]) / 2
        a, rr = np.meshgrid(alpha, r_mid, indexing="ij")  # (n_alpha, n_r): alpha outer
        return (rr * np.cos(a)).ravel(), (rr * np.sin(a)).ravel()


@dataclass(frozen=True)
class Layout:
    """The layers holding voxels, in voxel order; ``name`` is the particle (``Bin name``)."""

    layers: tuple[Layer, ...]
    name: str = ""
    source: str = ""

    @property
    def n_voxels(self) -> int:
        return sum(layer.size for layer in self.layers)

    def slices(self) -> list[slice]:
        """Each layer's columns of a flattened shower."""
        ends = np.cumsum([0] + [layer.size for layer in self.layers])
        return [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:], strict=True)]

    def check_width(self, width: int, what: str = "the data") -> None:
        """Refuses data whose showers do not have one value per voxel (:class:`ConfigError`, exit 2)."""
        if width != self.n_voxels:
            counts = " + ".join(f"{layer.size}" for layer in self.layers)
            raise ConfigError(f"layout {self.source or self.name}: {self.n_voxels} voxels ({counts} over layers "
                              f"{[layer.id for layer in self.layers]}), but {what} has {width} values per shower")


def _layer(id_, r_edges, n_alpha, where: str) -> Layer | None:
    try:
        edges = tuple(float(v) for v in (r_edges.split(",") if isinstance(r_edges, str) else r_edges))
        n_alpha = int(n_alpha)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: layer {id_}: r_edges must be numbers separated by commas and n_bin_alpha an "
                          f"integer, got r_edges={r_edges!r}, n_bin_alpha={n_alpha!r}") from None
    if len(edges) < 2:
        return None  # "0": a layer without voxels
    if n_alpha < 1 or any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ConfigError(f"{where}: layer {id_}: r_edges must increase and n_bin_alpha be >= 1")
    return Layer(int(id_), edges, n_alpha)


def read_layout(path: str | Path, particle: str | None = None) -> Layout:
    """CaloChallenge's binning XML: the ``<Bin>`` of ``particle`` (its ``name``), or the file's only one.

    Raises:
        ConfigError: a missing or malformed file, or no (unique) matching ``<Bin>`` (exit 2).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as e:
        raise ConfigError(f"layout {path}: cannot read it ({e.strerror or e})") from None
    except ET.ParseError as e:
        raise ConfigError(f"layout {path}: not XML ({e})") from None
    bins = [b for b in root.iter("Bin") if particle is None or b.get("name") == particle]
    if len(bins) != 1:
        names = [b.get("name") for b in root.iter("Bin")]
        raise ConfigError(f"layout {path}: {len(bins)} <Bin> elements match particle={particle} (the file has "
                          f"{names}); give dataset.particle=<name>")
    layers = [_layer(e.get("id"), e.get("r_edges", ""), e.get("n_bin_alpha", 1), str(path))
              for e in bins[0].iter("Layer")]
    layers = tuple(layer for layer in layers if layer is not None)
    if not layers:
        raise ConfigError(f"layout {path}: no layer holds voxels")
    return Layout(layers, bins[0].get("name") or "", str(path))


def as_layout(spec, particle: str | None = None) -> Layout:
    """A layout from a config value: a path to a binning XML, or a list of layers
    ``[{id: 0, r_edges: [0, 5, 10], n_alpha: 1}, ...]`` (the same order and meaning)."""
    if isinstance(spec, Layout):
        return spec
    if isinstance(spec, str | Path):
        return read_layout(spec, particle)
    try:
        layers = [_layer(e.get("id", i), e["r_edges"], e.get("n_alpha", 1), "dataset.layout")
                  for i, e in enumerate(spec)]
    except (TypeError, KeyError, AttributeError):
        raise ConfigError("dataset.layout: a binning XML file or a list of {id, r_edges, n_alpha}") from None
    layers = tuple(layer for layer in layers if layer is not None)
    if not layers:
        raise ConfigError("dataset.layout: no layer holds voxels")
    return Layout(layers, source="dataset.layout")
