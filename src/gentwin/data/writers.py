"""Samples written under the names of the file a model was trained on: HDF5, ROOT, npz or CSV.

``sample out=gen.h5`` of a model trained with ``dataset.x=showers dataset.c=incident_energies`` writes
the datasets ``showers`` and ``incident_energies``, so ``evaluate calo.h5 gen.h5 x=showers
c=incident_energies`` reads the output as it read the training file (``gentwin.data.files``).
Every file is written whole through a temporary file beside it (``gentwin.atomic``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gentwin.data.files import as_names
from gentwin.errors import UsageError

#: Formats ``write_arrays`` writes, by suffix.
FORMATS = (".h5", ".hdf5", ".root", ".npz", ".csv")


def keeps_names(dataset: dict | None) -> bool:
    """Whether a model trained on ``dataset`` (its config) writes its samples under the file's names:
    ``dataset=arrays`` models do; the other domains write ``x`` and ``c`` or their own formats."""
    return "ArraysDataModule" in str((dataset or {}).get("_target_"))


def named_arrays(x: np.ndarray, c: np.ndarray | None, dataset: dict) -> dict[str, np.ndarray]:
    """Samples ``x`` ``(N, *S)`` and conditions ``c`` ``(N, C)`` under the names of ``dataset.x`` and
    ``dataset.c``: one name keeps its array (a single condition as ``(N, 1)``, CaloChallenge's
    layout), a list of names gets one column each."""
    out = {}
    for key, value in (("x", x), ("c", c)):
        names = as_names(dataset.get(key))
        if value is None or not names:
            continue
        if len(names) == 1:
            out[names[0]] = value if key == "x" or value.shape[1] > 1 else value.reshape(-1, 1)
        else:
            flat = value.reshape(len(value), -1)
            out.update({name: flat[:, i] for i, name in enumerate(names)})
    return out


def write_arrays(path: str | Path, arrays: dict[str, np.ndarray], tree: str | None = None,
                 units: dict[str, str] | None = None) -> None:
    """Writes ``arrays`` by name to ``path``, the format chosen by its suffix (``FORMATS``).

    HDF5: one dataset per name (a ``unit`` attribute where ``units`` has one); ROOT: a TTree ``tree``
    (default ``events``) with a branch per name, fixed-size arrays kept; npz: one array per name; CSV:
    a header row and one column per value (``name[i]`` for the values of an array).

    Raises:
        UsageError: a suffix not in ``FORMATS``.
    """
    from gentwin.atomic import replacing, write_with

    path, units = Path(path), units or {}
    arrays = {k: np.asarray(v, np.float32) for k, v in arrays.items()}
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        import h5py

        def h5(tmp):
            with h5py.File(tmp, "w") as f:
                for name, value in arrays.items():
                    f[name] = value
                    if units.get(name):
                        f[name].attrs["unit"] = units[name]

        write_with(path, h5)
    elif suffix == ".root":
        import uproot

        def root(tmp):
            with uproot.recreate(tmp) as f:
                f.mktree(tree or "events", {k: (v.dtype, v.shape[1:]) if v.ndim > 1 else v.dtype
                                            for k, v in arrays.items()})
                f[tree or "events"].extend(arrays)

        write_with(path, root)
    elif suffix == ".npz":
        with replacing(path) as f:
            np.savez_compressed(f, **arrays)
    elif suffix == ".csv":
        names, columns = [], []
        for name, value in arrays.items():
            flat = value.reshape(len(value), -1)
            names += [name] if flat.shape[1] == 1 else [f"{name}[{i}]" for i in range(flat.shape[1])]
            columns.append(flat)
        with replacing(path) as f:
            np.savetxt(f, np.hstack(columns), delimiter=",", header=",".join(names), comments="", fmt="%.9g")
    else:
        raise UsageError(f"out={path}: write .h5, .root, .npz or .csv (this model's files)")
