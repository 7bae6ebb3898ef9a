"""Responses of a trained model, in data units, from its checkpoint alone: read the conditions, check
them against the training range, generate in batches, write them (``gentwin.data.writers``, or a format of
the model's domain). The ``sample`` console script (``gentwin.commands.sample``) describes the options."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from gentwin.errors import ConditionsError, UsageError


def read_csv(path: Path) -> dict[str, np.ndarray]:
    """Named float columns of a CSV file with a header row, read as ``dataset=arrays`` reads one
    (``gentwin.data.files``): blank and ``#`` comment lines skipped, a bad line named."""
    from gentwin.data.files import clip, read_columns
    from gentwin.errors import DataError

    try:
        columns = read_columns(path)
    except DataError as e:
        raise ConditionsError(str(e)) from None
    if all(_is_number(n) for n in columns):
        raise ConditionsError(f"{path}: expected a header row naming the columns, found {clip(', '.join(columns))}")
    return columns


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def condition_vectors(named: dict[str, np.ndarray], dm, cond_names: list[str], source: str) -> np.ndarray:
    """Model-visible conditions from named data-unit columns (the datamodule's ``condition_vectors``)."""
    try:
        if hasattr(dm, "condition_vectors"):
            return dm.condition_vectors(named)
        return np.stack([np.asarray(named[name], dtype=np.float64) for name in cond_names], 1).astype(np.float32)
    except KeyError as e:
        raise ConditionsError(f"{source}: {e.args[0] if e.args else e} (columns found: {sorted(named)})") from None


def load_conditions(path: Path, dm, cond_names: list[str], cond_dim: int, dataset: dict | None = None) -> np.ndarray:
    """Model-visible conditions ``(N, cond_dim)`` from a file: CSV with a header row, npz (an array ``c``
    or named data-unit arrays), or any format a ``dataset=arrays`` model's dataset reads."""
    from gentwin.data.interface import read_named_conditions

    if not path.is_file():
        raise ConditionsError(f"{path}: no such conditions file")
    if (c := read_named_conditions(path, dataset)) is not None:  # dataset=arrays: any format it reads
        pass
    elif path.suffix == ".csv":
        c = condition_vectors(read_csv(path), dm, cond_names, str(path))
    elif path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {k: f[k] for k in f.files}
        except (OSError, ValueError) as e:
            raise ConditionsError(f"{path}: not a readable npz file ({e})") from None
        if "c" in arrays:
            c = np.asarray(arrays["c"], dtype=np.float32)
        else:
            named = {k: v for k, v in arrays.items() if v.ndim == 1}
            c = condition_vectors(named, dm, cond_names, str(path))
    else:
        raise UsageError(f"conditions={path}: expected a .csv or .npz file")
    if c.ndim != 2 or c.shape[1] != cond_dim:
        raise ConditionsError(f"{path}: conditions of shape {c.shape}, the model needs (N, {cond_dim}) {cond_names}")
    if len(c) == 0:
        raise ConditionsError(f"{path}: no condition rows")
    if not np.isfinite(c).all():
        row = int(np.argmax(~np.isfinite(c).all(axis=1)))
        raise ConditionsError(f"{path}: non-finite condition in row {row + 1}")
    return c


def write_npz(out: Path, **arrays) -> None:
    """``np.savez_compressed`` to a temporary file in ``out``'s folder, then an atomic rename (``gentwin.atomic``)."""
    from gentwin.atomic import replacing

    with replacing(out) as f:
        np.savez_compressed(f, **arrays)


def generate(checkpoint: str, out: Path, n: int | None = None, seed: int = 0, batch_size: int = 65_536,
             conditions: str | None = None, from_dataset: bool = False, extrapolate: bool = False,
             threads: int | None = None, steps: int | None = None, solver: str | None = None) -> str:
    """Generates ``n`` samples (default: one per condition row, cycled) and writes them to ``out``;
    returns the line to print.

    Raises:
        UsageError, ConditionsError, gentwin.training.checkpoint.CheckpointError.
    """
    import torch

    from gentwin.training.checkpoint import load_model, read_checkpoint, safe_instantiate

    if not out.parent.is_dir():
        raise UsageError(f"out={out}: no such folder {out.parent}")
    read_checkpoint(checkpoint)  # refuses a wrong file before the heavy imports

    from gentwin.errors import ConfigError, DataError
    from gentwin.training.launch import set_threads

    set_threads(threads)
    model = with_solver(load_model(checkpoint), steps, solver)
    info = model.build_info
    cond_names = list(info.get("cond_names") or [])
    c = dm = None
    from gentwin.data.writers import FORMATS, keeps_names, named_arrays, write_arrays

    named = keeps_names(info.get("dataset"))  # dataset=arrays: written under the training file's names
    if out.suffix != ".npz" and not (named and out.suffix in FORMATS):  # a format of the model's domain (leaves)
        dm = safe_instantiate(info["dataset"], checkpoint, "dataset") if info.get("dataset") else None
        formats = [*(FORMATS if named else [".npz"]), *(dm.writers() if dm is not None else {})]
        if out.suffix not in formats:
            raise UsageError(f"out={out}: this model's samples are written as {', '.join(formats)}")
    if model.cond_dim == 0:
        if conditions is not None or from_dataset:
            raise UsageError(f"{checkpoint}: the model is unconditional; drop conditions= / from_dataset=")
        if n is None:
            raise UsageError("give the number of samples: n=<N>")
    else:
        if (conditions is not None) == from_dataset:
            raise UsageError(f"{checkpoint}: the model is conditional on {cond_names}: give either "
                             f"conditions=<file.csv|file.npz> or from_dataset=true")
        if dm is None and info.get("dataset"):
            dm = safe_instantiate(info["dataset"], checkpoint, "dataset")
        if from_dataset:
            if dm is None:
                raise ConditionsError(f"{checkpoint}: no dataset config saved; give conditions=<file>")
            try:
                dm.setup()
            except (ConfigError, DataError, OSError, ValueError) as e:
                raise ConditionsError(f"from_dataset: {e}") from None
            c = dm.c_raw_val
        else:
            c = load_conditions(Path(conditions), dm, cond_names, model.cond_dim, info.get("dataset"))
        n = len(c) if n is None else n
        c = c[np.arange(n) % len(c)]
        from gentwin.data.interface import check_conditions

        warning = check_conditions(c, model, dm, info, extrapolate, "dataset" if conditions is None else conditions)
        if warning:
            print(warning, file=sys.stderr)

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    x = model.sample(n, None if c is None else torch.as_tensor(c, dtype=torch.float32), batch_size=batch_size)
    rate = n / max(time.perf_counter() - t0, 1e-9)
    arrays = {"x": x.cpu().numpy()}
    if c is not None:
        arrays.update(c=c.astype(np.float32), cond_names=np.array(cond_names))
        if dm is not None:
            arrays.update({f"cond_{k}": v for k, v in (dm.conditions(c) or {}).items()})
    if named:  # dataset=arrays: the names (ROOT: the tree) of the file the model was trained on
        write_arrays(out, named_arrays(arrays["x"], c, info["dataset"]), info["dataset"].get("tree"), info.get("units"))
    elif out.suffix != ".npz":
        more = {"conditions": c} if c is not None else {}
        return f"generated {n} samples ({rate:,.0f} samples/s); " + dm.writers()[out.suffix](arrays["x"], out, **more)
    else:
        write_npz(out, **arrays)
    what = "" if c is None else f" for {n} condition rows"
    return f"wrote {n} samples of shape {tuple(model.shape)}{what} to {out} ({rate:,.0f} samples/s)"


def timing(checkpoint: str, threads: int = 1, steps: int | None = None, solver: str | None = None) -> str:
    """The generation-time table of ``gentwin.training.timing`` (conditions: zeros in model space; speed does not
    depend on their values)."""
    from gentwin.training.checkpoint import load_model
    from gentwin.training.launch import set_threads
    from gentwin.training.timing import generation_times, timing_table

    set_threads(threads)
    return timing_table(generation_times(with_solver(load_model(checkpoint), steps, solver), checkpoint))


def with_solver(model, steps: int | None = None, solver: str | None = None):
    """``model`` with ``steps`` / ``solver`` applied when given (``GenerativeModel.set_sampling``)."""
    if steps is not None or solver is not None:
        try:
            model.set_sampling(steps=steps, solver=solver)
        except (NotImplementedError, ValueError) as e:
            raise UsageError(str(e)) from None
    return model
