"""Reading samples ``x`` and conditions ``c`` from HDF5, ROOT, npz/npy or CSV files by name.

Every format is read through one small interface (:class:`_Source`): the names the file has, the
row count and per-row shape of a name (from the file's metadata, before any data is read), and the
first ``stop`` rows of a name. :func:`read_arrays` checks the names, the lengths, the memory the
arrays will take and the finiteness of every row, and raises :class:`~gentwin.errors.DataError` with
one line naming the file for anything wrong, so a run stops before it writes anything.

* HDF5 (``.h5``, ``.hdf5``; h5py): names are dataset paths (``showers``, ``group/energies``).
* ROOT (``.root``; uproot): names are branches of the TTree ``tree`` (the only tree when not given),
  or fields of an RNTuple (what current uproot writes for ``f["events"] = {...}``), read alike.
  Fixed-size array branches (``float[3][4]``, ``std::array``) keep their shape; jagged ones are refused.
* ``.npz``: array names; ``.npy``: the one array is ``x`` (no conditions).
* CSV (``.csv``, ``.txt``; comma, tab or whitespace separated): column names from the header row, the
  first line that is not blank and not a ``#`` comment. Blank lines and ``#`` comment lines are skipped
  everywhere (as numpy's ``loadtxt`` and pandas do), and so is a ``#`` comment ending a row; a last row
  without a newline counts.

Only the rows asked for are read where the format allows it (HDF5 and ``.npy`` by slicing, ROOT by
``entry_stop``, an ``.npz`` member by reading only its first rows' bytes, compressed or not), so
``dataset.n`` bounds the memory a read takes. Messages quote at most ``CLIP`` characters of a file.
"""

from __future__ import annotations

import codecs
import itertools
import math
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gentwin.errors import DataError, not_text

SUFFIXES = (".h5", ".hdf5", ".root", ".npz", ".npy", ".csv", ".txt")
# float32 arrays as read, their model-space copy and the tensors the split slices: about three copies.
COPIES = 3
# A CSV header must end within this many bytes (read before the memory check, so it is bounded).
HEADER_BYTES = 64 << 10
# The most characters of a file's content a message quotes.
CLIP = 200
# An .npz member is copied in pieces of at most this many bytes.
CHUNK = 16 << 20


def clip(text: str) -> str:
    """``text`` cut to ``CLIP`` characters, saying how long it was."""
    return text if len(text) <= CLIP else f"{text[:CLIP]}... ({len(text):,} characters)"


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
        self.rntuple = self.tree.classname == "ROOT::RNTuple"  # fields, not branches: no interpretation

    def keys(self):
        return list(self.tree.keys())

    def shape(self, name):
        inner = self._rntuple_shape(name) if self.rntuple else self._ttree_shape(name)
        if inner is None:
            raise DataError(f"{self.path}: branch {name!r} of tree {self.name!r} is {self.tree[name].typename}, "
                            f"not a number or a fixed-size array of numbers (a jagged branch must be padded to a "
                            f"fixed size first)")
        return int(self.tree.num_entries), inner

    def _ttree_shape(self, name) -> tuple[int, ...] | None:
        from uproot.interpretation.numerical import AsDtype

        interpretation = self.tree[name].interpretation
        if not isinstance(interpretation, AsDtype) or interpretation.to_dtype.base.kind not in "biuf":
            return None
        return tuple(interpretation.inner_shape)

    def _rntuple_shape(self, name) -> tuple[int, ...] | None:
        """The per-entry shape of an RNTuple field from its awkward form: fixed-size arrays
        (``RegularForm``) of numbers (``NumpyForm``); ``None`` for anything else (jagged, records...)."""
        import awkward as ak
        from awkward.types.numpytype import primitive_to_dtype

        form = self.tree[name].to_akform()[0]
        while isinstance(form, ak.forms.RecordForm) and len(form.contents) == 1:
            form = form.contents[0]
        inner = []
        while isinstance(form, ak.forms.RegularForm):
            inner.append(form.size)
            form = form.content
        if not isinstance(form, ak.forms.NumpyForm) or primitive_to_dtype(form.primitive).kind not in "biuf":
            return None
        return (*inner, *form.inner_shape)

    def read(self, name, stop):
        return self.tree.arrays([name], library="np", entry_stop=stop)[name]


class _NPZ(_Source):
    what = "array"

    def __init__(self, path):
        super().__init__(path)
        try:
            self.zip = zipfile.ZipFile(path)
            self.headers, self.offsets = {}, {}
            for member in self.zip.namelist():
                if member.endswith(".npy"):
                    with self.zip.open(member) as f:
                        version = np.lib.format.read_magic(f)
                        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)
                        self.headers[member[:-4]] = read_header(f)
                        self.offsets[member[:-4]] = f.tell()  # where the data starts
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
        """The first ``stop`` rows, copied from the member's stream: only their bytes are read (and
        decompressed), so ``dataset.n`` bounds the memory. A Fortran-ordered array is read whole."""
        shape, fortran, dtype = self.headers[name]
        if fortran and len(shape) > 1:  # its rows are not contiguous
            with np.load(self.path, allow_pickle=False) as f:
                return f[name][:stop]
        out = np.empty((stop, *shape[1:]), dtype)
        buf, done = out.reshape(-1).view(np.uint8), 0
        try:
            with self.zip.open(f"{name}.npy") as f:
                f.seek(self.offsets[name])
                while done < len(buf):
                    chunk = f.read(min(len(buf) - done, CHUNK))
                    if not chunk:
                        raise DataError(f"{self.path}: array {name!r} ends after {done:,} of the {len(buf):,} "
                                        f"bytes of its first {stop:,} rows (the file is cut short)")
                    buf[done:done + len(chunk)] = np.frombuffer(chunk, np.uint8)
                    done += len(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:  # a damaged member
            raise DataError(f"{self.path}: array {name!r} is unreadable ({clip(str(e))})") from None
        return out

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


def _is_data(line: bytes) -> bool:
    """A CSV line holding a row (or the header): neither blank nor a ``#`` comment."""
    first = line.lstrip()[:1]
    return first not in (b"", b"#")


class _CSV(_Source):
    """Columns of a text table; blank and ``#`` comment lines are skipped, the header is the first other line."""

    what = "column"

    def __init__(self, path):
        super().__init__(path)
        with path.open("rb") as f:
            head, more = f.read(HEADER_BYTES), bool(f.read(1))
        try:  # the whole first block must be text (a character cut by the bound is no error)
            codecs.getincrementaldecoder("utf-8")().decode(head, final=not more)
        except UnicodeDecodeError as e:
            raise DataError(not_text(path, e, "a CSV file with a header row")) from None
        nul = head.find(b"\0")
        if nul >= 0:
            raise DataError(f"{path}: not a text file (a NUL byte at offset {nul}; expected a CSV file with a "
                            f"header row)")
        lines = head.split(b"\n")
        complete = lines[:-1] if more else lines  # the last piece may go on past the bound
        for self.header_line, line in enumerate(complete, 1):
            if _is_data(line):
                break
        else:
            raise DataError(f"{path}: no header line within the first {HEADER_BYTES >> 10} KiB" if more else
                            f"{path}: no header row naming the columns (only blank or '#' lines)")
        header = line.decode("utf-8")
        self.delimiter = "," if "," in header else "\t" if "\t" in header else None
        self.columns = [h.strip() for h in header.split(self.delimiter)]
        if any(not h for h in self.columns):
            raise DataError(f"{path}:{self.header_line}: expected a header row naming the columns, found "
                            f"{clip(header.strip())!r}")
        # Rows are counted in blocks, so a file of one endless line takes no more memory than a block.
        count, first = 0, b""  # first: the first non-blank byte of the line being counted
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                *ended, rest = block.split(b"\n")
                for piece in ended:
                    count += (first or piece.lstrip()[:1]) not in (b"", b"#")
                    first = b""
                first = first or rest.lstrip()[:1]
        self.rows = count + (first not in (b"", b"#")) - 1  # a last line without a newline counts; less the header

    def keys(self):
        return list(self.columns)

    def shape(self, name):
        return self.rows, ()

    def _data_lines(self):
        """``(line number, text)`` of every row after the header, in file order."""
        with self.path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if number > self.header_line and _is_data(line):
                    try:
                        text = line.decode("utf-8")
                    except UnicodeDecodeError as e:
                        raise DataError(f"{self.path}:{number}: not UTF-8 text (byte {line[e.start]:#04x}); "
                                        f"expected rows of numbers") from None
                    values = len(text.split("#")[0].split(self.delimiter))
                    if values != len(self.columns):  # a ragged row: the columns would not line up
                        raise DataError(f"{self.path}:{number}: {values} values for the {len(self.columns)} "
                                        f"columns of the header")
                    yield number, text

    def read(self, name, stop):
        rows = (text for _, text in itertools.islice(self._data_lines(), stop))
        try:
            values = np.loadtxt(rows, delimiter=self.delimiter, usecols=self.columns.index(name), dtype=np.float64,
                                ndmin=1)
        except ValueError as e:  # numpy's message counts rows, not lines (and not consistently): find the line
            raise DataError(self._bad_line(name, stop) or f"{self.path}: column {name!r}: {clip(str(e))}") from None
        if len(values) != stop:  # the count and the reading disagree: refuse rather than guess
            raise DataError(f"{self.path}: column {name!r}: read {len(values):,} rows, counted {stop:,}")
        return values

    def _bad_line(self, name: str, stop: int) -> str | None:
        """The message naming the first line of the first ``stop`` rows whose column ``name`` is not a number."""
        col = self.columns.index(name)
        for number, text in itertools.islice(self._data_lines(), stop):
            fields = text.split("#")[0].split(self.delimiter)
            try:
                float(fields[col])
            except ValueError:
                return f"{self.path}:{number}: column {name!r}: {clip(fields[col].strip())!r} is not a number"
        return None


def read_columns(path: Path) -> dict[str, np.ndarray]:
    """Every column of a CSV file by its header name, float64 (``sample``'s conditions files)."""
    table = _CSV(path)
    return {name: table.read(name, table.rows) if table.rows else np.empty(0) for name in table.keys()}


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
