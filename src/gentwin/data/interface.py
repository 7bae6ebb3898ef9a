"""What a trained model's inputs and outputs mean: names, units, the conditions' training range.

Stored in the checkpoint at training (``condition_info``), used by ``sample`` to refuse conditions
outside the range the model was trained on (``check_conditions``), and written into the export's
sidecar JSON (``sidecar_interface``) so that a program calling the exported file can apply the same rule.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from gentwin.errors import ConditionsError, UsageError


def condition_info(dataset_cfg, dm) -> dict:
    """The checkpoint entries describing the conditions and units of datamodule ``dm`` (set up).

    ``cond_transform``: its config (``None``: identity); ``cond_range``: ``{name: [min, max]}`` in data
    units over the dataset (training and held-out splits); ``units``: ``dataset.units``.
    """
    node = dataset_cfg.get("cond_transform") if dataset_cfg is not None else None
    return {"cond_transform": OmegaConf.to_container(node, resolve=True) if node else None,
            "cond_range": {k: [float(lo), float(hi)] for k, (lo, hi) in dm.cond_range.items()},
            "cond_input_range": [[lo, hi] for lo, hi in dm.cond_input_range],
            "units": dict(dm.units)}


def named_conditions(c: np.ndarray, dm, cond_names: list[str]) -> dict[str, np.ndarray]:
    """Data-unit columns of condition vectors ``c`` by name: the datamodule's ``conditions`` (TPC: its
    raw profile variables) or, without a datamodule, the columns ``cond_names``."""
    if dm is not None and dm.cond_names:  # known before setup (TPC); a file's are known after reading it
        return dm.conditions(c)
    return {name: c[:, i] for i, name in enumerate(cond_names)}


def check_conditions(c: np.ndarray, model, dm, info: dict, extrapolate: bool, source: str) -> str:
    """Refuses conditions ``c`` (the datamodule's vectors, ``(N, cond_dim)``) that the model cannot take.

    Outside ``info["cond_range"]`` (the training range) they are refused unless ``extrapolate``; then
    the returned warning counts them. Where the condition transform is undefined (log of a value <= 0)
    they are refused always.

    Returns:
        A warning line, or ``""``.

    Raises:
        UsageError: out of range without ``extrapolate`` (exit 2; names the column, the value and the range).
        ConditionsError: the condition transform cannot apply (exit 3).
    """
    cond_names = list(info.get("cond_names") or [])
    named = named_conditions(c, dm, cond_names)
    outside, warned = np.zeros(len(c), bool), []
    for name, (lo, hi) in (info.get("cond_range") or {}).items():
        v = np.asarray(named.get(name, []), np.float64)
        if not v.size:
            continue
        bad = (v < lo) | (v > hi)
        if bad.any():
            i = int(np.argmax(bad))
            unit = (info.get("units") or {}).get(name, "")
            where = f"{name}={v[i]:.6g}{' ' + unit if unit else ''} (row {i + 1} of {source})"
            if not extrapolate:
                raise UsageError(f"condition {where} is outside the training range [{lo:.6g}, {hi:.6g}]; "
                                 f"{int(bad.sum())} row(s) are: give extrapolate=true to generate anyway")
            warned.append(name)
            outside |= bad
    with torch.no_grad():
        k = model.cond_transform(torch.as_tensor(c, dtype=torch.float32))
    finite = torch.isfinite(k).all(1).numpy()
    if not finite.all():
        i = int(np.argmax(~finite))
        j = int(np.argmax(~torch.isfinite(k[i]).numpy()))
        name = cond_names[j] if j < len(cond_names) else f"column {j}"
        raise ConditionsError(f"{source}: condition {name}={float(c[i, j]):.6g} (row {i + 1}) is outside the domain "
                              f"of the model's condition transform ({type(model.cond_transform).__name__}, "
                              f"dataset.cond_transform): it gives {float(k[i, j])}")
    if outside.any():
        return (f"warning: {int(outside.sum())} of {len(c)} condition rows lie outside the training range "
                f"({', '.join(warned)}): extrapolating")
    return ""


def sidecar_interface(sampler, info: dict) -> dict:
    """The export sidecar's ``inputs`` and ``outputs``: each with name, shape, dtype, unit and meaning;
    per condition its training range; how to draw the noise."""
    units = info.get("units") or {}
    dataset = info.get("dataset") or {}
    x_name = dataset.get("x") if isinstance(dataset.get("x"), str) else None
    cond_names = list(info.get("cond_names") or [])
    ranges, inputs_range = info.get("cond_range") or {}, info.get("cond_input_range") or []
    shapes = sampler.input_shapes()
    inputs = [{"name": "z", "shape": shapes["z"], "dtype": "float32", "unit": "",
               "draw": "standard normal N(0, 1), independent per element"}]
    if "c" in shapes:
        cond_input = getattr(sampler, "cond_input", None)
        if cond_input is None:
            columns = [_column(n, units, ranges.get(n, inputs_range[i] if i < len(inputs_range) else None))
                       for i, n in enumerate(cond_names)]
        else:  # c holds the variables the dataset's condition vectors are made of (TPC)
            columns = [_column(n, units, ranges.get(n), periodic=n not in ranges and f"{n}_frac" in ranges)
                       for n in cond_input.names]
        item = {"name": "c", "shape": shapes["c"], "dtype": "float32",
                "meaning": "conditions in data units, one column per name below (the fitted condition "
                           "transform is inside the graph)", "columns": columns}
        if cond_input is not None:
            item["graph_conditions"] = cond_input.describe()  # what the graph makes of c before the networks
        inputs.append(item)
    if "eps" in shapes:
        inputs.append({"name": "eps", "shape": shapes["eps"], "dtype": "float32", "unit": "",
                       "draw": "standard normal N(0, 1) (the VAE's decoder noise; zeros give the decoder mean)"})
    output = {"name": "x", "shape": ["B", *sampler.shape], "dtype": "float32", "space": "data",
              "unit": units.get(x_name, "") if x_name else "", "file_name": x_name}
    return {"inputs": inputs, "outputs": [output], "output": output,
            "noise": "draw z (and eps) from N(0, 1); give c in data units within each column's training_range"}


def _column(name: str, units: dict, training_range, periodic: bool = False) -> dict:
    """One condition column of the sidecar: name, unit, training range and the rule outside it; a variable
    that enters only through its fractional part (``periodic``) has no range to leave."""
    if periodic:
        return {"name": name, "unit": units.get(name, ""), "training_range": None,
                "rule": f"any value: only {name} % 1 enters the model, trained over all of [0, 1)"}
    return {"name": name, "unit": units.get(name, ""), "training_range": training_range,
            "rule": "outside training_range: extrapolation; `sample` refuses it unless extrapolate=true"}


def read_named_conditions(path: Path, dataset: dict | None) -> np.ndarray | None:
    """Data-unit conditions ``(N, C)`` read from ``path`` by the names of ``dataset.c`` (and
    ``dataset.tree``), from any file ``dataset=arrays`` reads, a single ``(N, 1)`` array or ``(N,)``
    alike; ``None`` when ``dataset`` names no conditions or is no ``dataset=arrays`` config, or when
    an npz file holds an array ``c`` instead (a run's ``samples.npz``)."""
    from gentwin.data.files import as_names, read_arrays
    from gentwin.errors import DataError

    names = as_names((dataset or {}).get("c")) if "ArraysDataModule" in str((dataset or {}).get("_target_")) else []
    if not names:
        return None
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                if "c" in f.files and not set(names) <= set(f.files):
                    return None
        except (OSError, ValueError) as e:
            raise ConditionsError(f"{path}: not a readable npz file ({e})") from None
    try:
        a = read_arrays(path, names, tree=dataset.get("tree"))
    except DataError as e:
        raise ConditionsError(str(e).replace("(dataset.x)", "(the model's conditions)")) from None
    return a.x.reshape(len(a.x), -1)
