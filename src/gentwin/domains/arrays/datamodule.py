"""``dataset=arrays``: samples and conditions read from a user's file by name."""

from __future__ import annotations

from gentwin.data.base import ArrayDataModule
from gentwin.data.files import Arrays, as_names, read_arrays
from gentwin.data.units import check_units
from gentwin.errors import ConfigError
from gentwin.metrics.floors import split_halves


class ArraysDataModule(ArrayDataModule):
    """Samples ``x`` and conditions ``c`` of an HDF5, ROOT, npz/npy or CSV file (see ``reader``).

    The samples keep their shape (vectors, images); the models take it from the data. The transform
    (``dataset/transform``: standardize by default) is fitted on the training split. The key
    properties are the named features (:func:`gentwin.metrics.features.named_features`): every
    column when a sample has at most ``max_features`` values, else summaries.

    Args:
        path: the file.
        x: name, or list of names, of the samples (HDF5 datasets, ROOT branches, npz arrays, CSV columns).
        c: name, or list of names, of the conditions; ``None`` for an unconditional dataset.
        tree: ROOT: the TTree (``None``: the file's only tree).
        drop_nonfinite: leave out (and count) rows holding NaN or inf instead of refusing the file.
        max_memory_gb: refuse a file needing more memory than this (``None``: half the available memory).
        max_features: compare samples column by column up to this many values, through summaries above.
        n: the first ``n`` rows (``None``: all).
        units: ``{array or column name: unit}`` (``gentwin.data.units``), for figures, tables and files.
        layout: a calorimeter's binning (CaloChallenge's XML file, or a list of layers; see
            :mod:`gentwin.domains.calorimeter.layout`): the key properties are then the showers'
            high-level observables and the figures the calorimeter's; its voxel count must be the
            samples' width. ``particle``: the XML's ``<Bin name>`` when it holds several.
        energy_unit: the unit of the samples' values in the calorimeter figures.
        **kwargs: ``ArrayDataModule`` arguments (``val_fraction``, ``batch_size``, ``transform``, ...).
    """

    def __init__(self, path: str | None = None, x=None, c=None, tree: str | None = None,
                 drop_nonfinite: bool = False, max_memory_gb: float | None = None, max_features: int = 32,
                 n: int | None = None, layout=None, particle: str | None = None, energy_unit: str = "MeV",
                 units=None, **kwargs):
        super().__init__(n=n, **kwargs)
        if path is None:
            raise ConfigError("dataset.path is not set: give the file, dataset.path=<file.h5|.root|.npz|.npy|.csv>")
        if max_memory_gb is not None and max_memory_gb <= 0:
            raise ConfigError(f"dataset.max_memory_gb must be > 0, got {max_memory_gb}")
        self.path, self.x_keys, self.c_keys, self.tree = str(path), as_names(x), as_names(c), tree
        self.drop_nonfinite, self.max_memory_gb, self.max_features = drop_nonfinite, max_memory_gb, max_features
        self.units = check_units(units, self.x_keys + self.c_keys)
        self.arrays: Arrays | None = None
        self.x_names: list[str] = []
        self.layout, self.energy_unit, self.log_bins = None, energy_unit, False
        if layout is not None:
            from gentwin.domains.calorimeter.layout import as_layout
            from gentwin.domains.calorimeter.observables import LOG_BINNED

            self.layout = as_layout(layout, particle)
            self.log_bins = LOG_BINNED  # separation power of the energies in log bins (evaluate's scorecard)

    def build(self, rng):
        a = read_arrays(self.path, self.x_keys, self.c_keys or None, self.tree, self.n, self.drop_nonfinite,
                        None if self.max_memory_gb is None else self.max_memory_gb * 1e9)
        self.arrays, self.x_names, self.cond_names = a, a.x_names, a.c_names
        if self.layout is not None:
            self.layout.check_width(a.x[0].size, f"{self.path} ({self.x_keys})")
        return a.x, a.c

    def properties(self, x, c=None):
        from gentwin.metrics.features import named_features

        if self.layout is not None:
            from gentwin.domains.calorimeter.observables import shower_properties

            return shower_properties(x, c, self.layout)
        return named_features(x, self.x_names or None, self.max_features)

    def figures(self, real, fake, c):
        from gentwin.plots.marginals import marginals_figure

        # Halves A, B of the held-out samples; the generated ones at B's conditions, as evaluate compares them.
        ia, ib = split_halves(len(real), self.seed)
        if self.layout is not None:
            from gentwin.domains.calorimeter.figures import shower_figures

            return shower_figures(real, c, fake[ib], None if c is None else c[ib], self.layout, (ia, ib),
                                  energy_unit=self.energy_unit)
        return {"marginals": marginals_figure(self.properties(real), self.properties(fake[ib]), halves=(ia, ib),
                                              units=self.units)}

    def describe(self) -> str:
        a = self.arrays
        dropped = f"; {a.dropped:,} rows with NaN or inf left out" if a is not None and a.dropped else ""
        return f"{super().describe()}\n{self.path}: x {self.x_keys}, c {self.c_keys or None}{dropped}"
