"""The detector layout of a voxelised calorimeter: CaloChallenge's binning XML, a list of layers, or a grid.

CaloChallenge ships its geometry as ``<Bins><Bin pid=.. name=..><Layer id=.. r_edges="0,5,.."
n_bin_alpha=../>..</Bin></Bins>``: concentric layers along the particle's direction, each cut into
radial bins (``r_edges``, in mm) and equal alpha (polar angle) bins. A layer whose ``r_edges`` is
``"0"`` holds no voxels. The voxel order is that of CaloChallenge's own reader
(``code/XMLHandler.py`` of github.com/CaloChallenge/homepage, ``fill_r_a_lists``): layers in file
order; within a layer the alpha bins are the outer index and the radial bins the inner one (a layer's
voxels reshape to ``(n_alpha, n_r)``). The alpha bin centres are the midpoints of
``linspace(-pi, pi, n_alpha + 1)`` (a layer of one alpha bin sits at alpha = 0), and a voxel's eta and
phi are ``r_mid * cos(alpha)`` and ``r_mid * sin(alpha)`` (``SetEtaAndPhiFromPolar``).

A regular grid (``{grid: [n_layers, nx, ny], cell_mm: [dx, dy]}``, in a config or a YAML file) has
layers of ``nx x ny`` square-cut cells, x the outer index and y the inner one (a shower reshapes to
``(n_layers, nx, ny)``), cell centres at ``(i + 1/2 - nx/2) dx`` and ``(j + 1/2 - ny/2) dy``: centred
on the axis. Its centres and widths are in x and y instead of eta and phi.
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

    def positions(self) -> dict[str, np.ndarray]:
        """The voxels' coordinates by axis name, for the energy centres and widths: eta and phi in a
        layer binned in alpha, none in one without (as CaloChallenge computes them)."""
        return dict(zip(("eta", "phi"), self.eta_phi(), strict=True)) if self.n_alpha > 1 else {}

    def eta_phi(self) -> tuple[np.ndarray, np.ndarray]:
        """Each voxel's eta and phi (alpha outer, r inner), ``(size,)`` each."""
        r = np.asarray(self.r_edges, np.float64)
        r_mid = (r[:-1] + r[1:]) / 2
        alpha_edges = np.linspace(-math.pi, math.pi, self.n_alpha + 1)
        alpha = (alpha_edges[:-1] + alpha_edges[1:]) / 2
        a, rr = np.meshgrid(alpha, r_mid, indexing="ij")  # (n_alpha, n_r): alpha outer
        return (rr * np.cos(a)).ravel(), (rr * np.sin(a)).ravel()


@dataclass(frozen=True)
class GridLayer:
    """One layer of a regular grid: ``nx x ny`` cells of ``dx x dy`` (mm), x outer, y inner."""

    id: int
    nx: int
    ny: int
    dx: float = 1.0
    dy: float = 1.0

    @property
    def size(self) -> int:
        return self.nx * self.ny

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell edges in x ``(nx + 1,)`` and in y ``(ny + 1,)``, centred on the axis."""
        return ((np.arange(self.nx + 1) - self.nx / 2) * self.dx, (np.arange(self.ny + 1) - self.ny / 2) * self.dy)

    def positions(self) -> dict[str, np.ndarray]:
        """Each cell's centre in x and in y (x outer, y inner), ``(size,)`` each; none for a single cell."""
        if self.size < 2:
            return {}
        ex, ey = self.edges()
        x, y = np.meshgrid((ex[:-1] + ex[1:]) / 2, (ey[:-1] + ey[1:]) / 2, indexing="ij")
        return {"x": x.ravel(), "y": y.ravel()}


@dataclass(frozen=True)
class Layout:
    """The layers holding voxels, in voxel order; ``name`` is the particle (``Bin name``)."""

    layers: tuple[Layer | GridLayer, ...]
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


def grid_layout(spec, where: str = "dataset.layout") -> Layout:
    """A regular grid from ``{grid: [n_layers, nx, ny], cell_mm: [dx, dy]}`` (``cell_mm`` default 1 x 1).

    Raises:
        ConfigError: a grid that is not three positive integers or cells that are not two positive sizes.
    """
    grid, cell = spec.get("grid"), spec.get("cell_mm", (1.0, 1.0))
    try:
        n, nx, ny = (int(v) for v in grid)
        dx, dy = (float(v) for v in cell)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: a grid is {{grid: [n_layers, nx, ny], cell_mm: [dx, dy]}}, got grid={grid!r}, "
                          f"cell_mm={cell!r}") from None
    if min(n, nx, ny) < 1 or min(dx, dy) <= 0:
        raise ConfigError(f"{where}: grid sizes must be >= 1 and cell sizes > 0, got grid={list(grid)}, "
                          f"cell_mm={list(cell)}")
    unknown = set(spec) - {"grid", "cell_mm"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} of a grid; its keys are grid and cell_mm")
    return Layout(tuple(GridLayer(i, nx, ny, dx, dy) for i in range(n)), source=where)


def _read_yaml(path: Path):
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(OmegaConf.load(path))
    except OSError as e:
        raise ConfigError(f"layout {path}: cannot read it ({e.strerror or e})") from None
    except Exception as e:  # noqa: BLE001 -- the YAML parser's many errors: one line
        raise ConfigError(f"layout {path}: not YAML ({str(e).splitlines()[0]})") from None


def as_layout(spec, particle: str | None = None) -> Layout:
    """A layout from a config value: a path to a binning XML, a list of layers ``[{id: 0, r_edges: [0, 5,
    10], n_alpha: 1}, ...]`` (the same order and meaning), a grid ``{grid: [n_layers, nx, ny], cell_mm:
    [dx, dy]}``, or a YAML file (``.yaml``, ``.yml``) holding one of these two."""
    if isinstance(spec, Layout):
        return spec
    where = "dataset.layout"
    if isinstance(spec, str | Path):
        if Path(spec).suffix.lower() not in (".yaml", ".yml"):
            return read_layout(spec, particle)
        where, spec = f"layout {spec}", _read_yaml(Path(spec))
    if hasattr(spec, "keys"):
        return grid_layout(dict(spec), where)
    try:
        layers = [_layer(e.get("id", i), e["r_edges"], e.get("n_alpha", 1), where) for i, e in enumerate(spec)]
    except (TypeError, KeyError, AttributeError):
        raise ConfigError(f"{where}: a binning XML file, a list of {{id, r_edges, n_alpha}} or "
                          f"{{grid: [n_layers, nx, ny], cell_mm: [dx, dy]}}") from None
    layers = tuple(layer for layer in layers if layer is not None)
    if not layers:
        raise ConfigError(f"{where}: no layer holds voxels")
    return Layout(layers, source=where)
