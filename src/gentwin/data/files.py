"""Reading samples ``x`` and conditions ``c`` from HDF5, ROOT, npz/npy or CSV files by name.

Every format is read through one small interface (:class:`_Source`): the names the file has, the
row count and per-row shape of a name (from the file's metadata, before any data is read), and the
first ``stop`` rows of a name. :func:`read_arrays` checks the names, the lengths, the memory the
arrays will take and the finiteness of every row, and raises :class:`~gentwin.errors.DataError` with
one line naming the file for anything wrong, so a run stops before it writes anything.

* HDF5 (``.h5``, ``.hdf5``; h5py): names are dataset paths (``showers``, ``group/energies``).
* ROOT (``.root``; uproot): names are branches of the TTree ``tree`` (the only tree when not given).
  Fixed-size array branches (``float[3][4]``) keep their shape; jagged branches are refused.
* ``.npz``: array names; ``.npy``: the one array is ``x`` (no conditions).
* CSV (``.csv``, ``.txt``; comma, tab or whitespace separated): column names from the header row.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gentwin.errors import DataError, not_text

SUFFIXES = (".h5", ".hdf5", ".root", ".npz", ".npy", ".csv", ".txt")
# float32 arrays as read, their model-space copy and the tensors the split slices: about three copies.
COPIES = 3


@dataclass
class Arrays:
    """Samples ``x`` ``(N, *S)`` and conditions ``c`` ``(N, C)`` or ``None``, float32, with their names.

    ``x_names`` names the columns of ``x`` flattened per sample; ``dropped`` counts the rows left out
    for holding NaN or inf (with ``drop_nonfinite``).
    """

    x: np.ndarray
    c: np.ndarray | None
    x_names: list[str]
    c_names: list[str]
    source: str
    dropped: int = 0
    rows_in_file: int = 0


def as_names(spec) -> list[str]:
    """``None`` -> ``[]``; a name -> ``[name]``; a list of names as it is."""
    if spec is None:
        return []
    if isinstance(spec, str):
        return [spec]
    return [str(s) for s in spec]


class _Source:
    """One open file: ``keys()``, ``shape(name) -> (rows, per-row shape)``, ``read(name, stop)``."""

    what = "name"

    def __init__(self, path: Path):
        self.path = path

    def keys(self) -> list[str]:
        raise NotImplementedError

    def shape(self, name: str) -> tuple[int, tuple[int, ...]]:
        raise NotImplementedError

    def read(self, name: str, stop: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Releases the file (nothing to release by default)."""


class _HDF5(_Source):
    what = "dataset"

    def __init__(self, path):
        super().__init__(path)
        import h5py

        try:
            self.file = h5py.File(path, "r")
        except OSError as e:
            raise DataError(f"{path}: not a readable HDF5 file ({e})") from None
        self.datasets = {}
        self.file.visititems(lambda name, obj: self.datasets.update({name: obj}) if isinstance(obj, h5py.Dataset)
                             else None)

    def keys(self):
        return sorted(self.datasets)

    def shape(self, name):
        d = self.datasets[name]
        if d.dtype.kind not in "biuf" or not d.shape:
            raise DataError(f"{self.path}: dataset {name!r} holds {d.dtype} of shape {d.shape}, not rows of numbers")
        return d.shape[0], tuple(d.shape[1:])

    def read(self, name, stop):
        return self.datasets[name][:stop]

    def close(self):
        self.file.close()


class _ROOT(_Source):
    what = "branch"

    def __init__(self, path, tree: str | None):
        super().__init__(path)
        import uproot

        try:
            self.file = uproot.open(path)
            classes = self.file.classnames()
        except Exception as e:  # uproot raises ValueError, OSError, KeyError... for a file that is not ROOT
            raise DataError(f"{path}: not a readable ROOT file ({type(e).__name__}: {e})") from None
        trees = sorted({k.split(";")[0] for k, v in classes.items() if v in ("TTree", "TNtuple", "ROOT::RNTuple")})
        if tree is None:
            if len(trees) != 1:
                raise DataError(f"{path}: name the tree with dataset.tree=<name>; the file has the trees "
                                f"{', '.join(trees) or '(none)'}")
            tree = trees[0]
        if tree not in trees:
            raise DataError(f"{path}: no tree {tree!r} (dataset.tree); the file has the trees "
                            f"{', '.join(trees) or '(none)'}")
        self.tree, self.name = self.file[tree], tree

    def keys(self):
        return list(self.tree.keys())

    def shape(self, name):
        from uproot.interpretation.numerical import AsDtype

        interpretation = self.tree[name].interpretation
        if not isinstance(interpretation, AsDtype) or interpretation.to_dtype.base.kind not in "biuf":
            raise DataError(f"{self.path}: branch {name!r} of tree {self.name!r} is {self.tree[name].typename}, "
                            f"not a number or a fixed-size array of numbers (a jagged branch must be padded to a "
                            f"fixed size first)")
        return int(self.tree.num_entries), tuple(interpretation.inner_shape)

    def read(self, name, stop):
        return self.tree.arrays([name], library="np", entry_stop=stop)[name]


class _NPZ(_Source):
    what = "array"

    def __init__(self, path):
        super().__init__(path)
        try:
            self.zip = zipfile.ZipFile(path)
            self.headers = {}
            for member in self.zip.namelist():
                if member.endswith(".npy"):
                    with self.zip.open(member) as f:
                        version = np.lib.format.read_magic(f)
                        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)
                        self.headers[member[:-4]] = read_header(f)
        except (zipfile.BadZipFile, ValueError, OSError) as e:
            raise DataError(f"{path}: not a readable npz file ({e})") from None

    def keys(self):
        return sorted(self.headers)

    def shape(self, name):
        shape, _, dtype = self.headers[name]
        if dtype.kind not in "biuf" or not shape:
            raise DataError(f"{self.path}: array {name!r} holds {dtype} of shape {shape}, not rows of numbers")
        return shape[0], tuple(shape[1:])

    def read(self, name, stop):
        with np.load(self.path, allow_pickle=False) as f:
            return f[name][:stop]

    def close(self):
        self.zip.close()


class _NPY(_Source):
    what = "array"

    def __init__(self, path):
        super().__init__(path)
        try:
            self.array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as e:
            raise DataError(f"{path}: not a readable .npy file ({e})") from None
        if self.array.dtype.kind not in "biuf" or not self.array.shape:
            raise DataError(f"{path}: holds {self.array.dtype} of shape {self.array.shape}, not rows of numbers")

    def keys(self):
        return ["x"]

    def shape(self, name):
        return self.array.shape[0], tuple(self.array.shape[1:])

    def read(self, name, stop):
        return np.array(self.array[:stop])


class _CSV(_Source):
    what = "column"

    def __init__(self, path):
        super().__init__(path)
        try:
            with path.open(encoding="utf-8") as f:
                header = f.readline()
        except UnicodeDecodeError as e:
            raise DataError(not_text(path, e, "a CSV file with a header row")) from None
        self.delimiter = "," if "," in header else "\t" if "\t" in header else None
        self.columns = [h.strip() for h in header.split(self.delimiter)]
        if not header.strip() or any(not h for h in self.columns):
            raise DataError(f"{path}:1: expected a header row naming the columns, found {header.strip()!r}")
        with path.open("rb") as f:
            lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
        self.rows = max(0, lines - 1)

    def keys(self):
        return list(self.columns)

    def shape(self, name):
        return self.rows, ()

    def read(self, name, stop):
        try:
            return np.loadtxt(self.path, delimiter=self.delimiter, skiprows=1, usecols=self.columns.index(name),
                              max_rows=stop, dtype=np.float64, ndmin=1)
        except ValueError as e:
            raise DataError(f"{self.path}: column {name!r}: {e}") from None


def open_source(path: Path, tree: str | None = None) -> _Source:
    """The reader of ``path`` by its suffix; a ``DataError`` for a missing file or an unknown suffix."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (dataset.path)")
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return _HDF5(path)
    if suffix == ".root":
        return _ROOT(path, tree)
    if suffix == ".npz":
        return _NPZ(path)
    if suffix == ".npy":
        return _NPY(path)
    if suffix in (".csv", ".txt"):
        return _CSV(path)
    raise DataError(f"{path}: unknown format {suffix or '(no suffix)'!r}; readable: {', '.join(SUFFIXES)}")


def available_bytes() -> int:
    """Memory available to this process now (the system's free and reclaimable memory)."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):  # not POSIX: assume 8 GB
        return 8 << 30


def _columns(src: _Source, names: list[str], key: str) -> tuple[int, tuple[int, ...], list[str]]:
    """``(rows, per-row shape, column names)`` of ``names`` read together as ``key`` (``x`` or ``c``)."""
    missing = [n for n in names if n not in src.keys()]
    if missing:
        where = f"tree {src.name!r}" if isinstance(src, _ROOT) else "the file"
        raise DataError(f"{src.path}: no {src.what} {missing[0]!r} (dataset.{key}); {where} has: "
                        f"{', '.join(src.keys()) or '(nothing)'}")
    shapes = {n: src.shape(n) for n in names}
    rows = {n: s[0] for n, s in shapes.items()}
    if len(set(rows.values())) > 1:
        raise DataError(f"{src.path}: the {src.what}s of dataset.{key} have different lengths: {rows}")
    if len(names) == 1:
        (name,) = names
        inner = shapes[name][1]
        if key == "c" and len(inner) > 1:
            raise DataError(f"{src.path}: conditions {name!r} have shape {inner} per row; conditions are "
                            f"numbers or vectors")
        width = math.prod(inner)
        cols = [name] if not inner or width == 1 else [f"{name}[{i}]" for i in range(width)]
        return rows[name], inner if inner else (1,), cols
    wide = {n: s[1] for n, s in shapes.items() if math.prod(s[1]) != 1}
    if wide:
        name, inner = next(iter(wide.items()))
        raise DataError(f"{src.path}: {src.what} {name!r} has shape {inner} per row; a list in dataset.{key} "
                        f"takes one number per row from each {src.what} (give an array-valued one alone)")
    return rows[names[0]], (len(names),), list(names)


def read_arrays(path: str | Path, x, c=None, tree: str | None = None, n: int | None = None,
                drop_nonfinite: bool = False, max_bytes: float | None = None) -> Arrays:
    """Reads ``x`` (one name keeping its shape, or a list of scalar names as columns) and ``c``.

    Args:
        path: the file; its suffix picks the format (``SUFFIXES``).
        x: name or list of names of the samples.
        c: name or list of names of the conditions, or ``None``.
        tree: ROOT only: the TTree (``None``: the file's only tree).
        n: read only the first ``n`` rows (``None``: all).
        drop_nonfinite: leave out rows holding NaN or inf in ``x`` or ``c`` (counted) instead of refusing.
        max_bytes: refuse a read taking more memory than this (``None``: half the available memory).

    Raises:
        DataError: one line naming the file: unreadable, missing names (listing those the file has),
            different lengths, too large, or non-finite rows.
    """
    path = Path(path).expanduser()
    x_keys, c_keys = as_names(x), as_names(c)
    if not x_keys:
        raise DataError(f"{path}: name the samples with dataset.x=<name> or dataset.x=[<name>, ...]")
    src = open_source(path, tree)
    try:
        if isinstance(src, _NPY) and c_keys:
            raise DataError(f"{path}: a .npy file holds one unnamed array (the samples); put samples and "
                            f"conditions in an .npz file to name them")
        if isinstance(src, _NPY):
            x_keys = ["x"]
        rows, x_shape, x_names = _columns(src, x_keys, "x")
        c_rows, c_shape, c_names = _columns(src, c_keys, "c") if c_keys else (rows, (0,), [])
        if c_rows != rows:
            raise DataError(f"{path}: x has {rows:,} rows but c has {c_rows:,} "
                            f"(dataset.x={x_keys}, dataset.c={c_keys})")
        if rows == 0:
            raise DataError(f"{path}: no rows in {x_keys}")
        stop = rows if n is None else min(n, rows)
        per_row = 4 * COPIES * (math.prod(x_shape) + c_shape[0])
        limit = available_bytes() / 2 if max_bytes is None else max_bytes
        if stop * per_row > limit:
            fit = int(limit // per_row)
            raise DataError(f"{path}: {stop:,} rows of {x_shape} samples take {_size(stop * per_row)} in memory "
                            f"(float32, with the model-space copies), more than the {_size(limit)} allowed "
                            f"(dataset.max_memory_gb; default half the available memory); {fit:,} rows fit: "
                            f"dataset.n={fit}")
        x_arr = _stack(src, x_keys, stop, x_shape)
        c_arr = _stack(src, c_keys, stop, c_shape) if c_keys else None
    finally:
        src.close()
    bad = ~np.isfinite(x_arr.reshape(stop, -1)).all(axis=1)
    if c_arr is not None:
        bad |= ~np.isfinite(c_arr).all(axis=1)
    dropped = int(bad.sum())
    if dropped and not drop_nonfinite:
        first = int(np.argmax(bad))
        raise DataError(f"{path}: {dropped:,} of {stop:,} rows hold NaN or inf (the first is row {first}); leave "
                        f"them out with dataset.drop_nonfinite=true")
    if dropped:
        x_arr, c_arr = x_arr[~bad], None if c_arr is None else c_arr[~bad]
        if len(x_arr) == 0:
            raise DataError(f"{path}: every one of the {stop:,} rows holds NaN or inf")
    return Arrays(x_arr, c_arr, x_names, c_names, str(path), dropped, rows)


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.2f} MB"


def _stack(src: _Source, names: list[str], stop: int, shape: tuple[int, ...]) -> np.ndarray:
    """The first ``stop`` rows of ``names`` as one float32 array ``(stop, *shape)``."""
    parts = [np.asarray(src.read(name, stop), dtype=np.float32) for name in names]
    if len(parts) == 1:
        return parts[0].reshape(stop, *shape)
    return np.stack([p.reshape(stop) for p in parts], axis=1)
