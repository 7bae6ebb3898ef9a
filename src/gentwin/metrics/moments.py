"""First and second moments of real vs generated properties.

The statistics table of Calvo Ordoñez 2022 (generative ML for particle physics) (Figure 23: mean, standard deviation,
variance and covariance of
the original vs the generated sample, per dimension) as array functions, metric entries and a
plain-text table.

All moments are population moments (``ddof=0``), so ``diag(cov) == var == std**2``. Calvo Ordoñez's (2022)
``stats_dist`` (its Listing 2) mixes ``np.std``/``np.var`` (``ddof=0``) with ``np.cov``
(``ddof=1``); we use one convention so the rows of the table agree with each other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Properties = dict[str, np.ndarray]


def stack_properties(props: Properties, keys: Sequence[str] | None = None) -> np.ndarray:
    """Stack named 1-D property arrays into one sample matrix.

    Args:
        props: property name -> array of shape (N,); all arrays must have the same length.
        keys: which properties, in which column order; all of ``props`` (in its order) if None.

    Returns:
        Array of shape (N, D), float64, one column per key.
    """
    keys = list(props) if keys is None else list(keys)
    missing = [k for k in keys if k not in props]
    if missing:
        raise KeyError(f"missing properties {missing}; have {list(props)}")
    cols = [np.asarray(props[k], dtype=np.float64).reshape(-1) for k in keys]
    lengths = {k: c.shape[0] for k, c in zip(keys, cols, strict=True)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"properties have different lengths: {lengths}")
    return np.stack(cols, axis=1)


def moments(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension mean, std and variance, and the covariance matrix of a sample.

    Population moments throughout (``ddof=0``), as Calvo Ordoñez's (2022) ``stats_dist`` computes the mean,
    standard deviation and variance; the covariance uses the same normalisation so that its
    diagonal equals the variance.

    Args:
        x: samples, shape (N,) or (N, D), N >= 1.

    Returns:
        ``{"mean": (D,), "std": (D,), "var": (D,), "cov": (D, D)}``; D = 1 for 1-D input.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N,) or (N, D) array, got shape {x.shape}")
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / x.shape[0]
    var = np.diag(cov).copy()
    return {"mean": mean, "std": np.sqrt(var), "var": var, "cov": cov}


def _pairs(keys: Sequence[str]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(keys)) for j in range(i + 1, len(keys))]


def moment_values(real: Properties, fake: Properties, cond: Properties | None = None) -> dict[str, float]:
    """Raw moments of every property of the real and the generated sample (Calvo Ordoñez 2022, Figure 23).

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.

    Returns:
        ``{p}_mean_real``, ``{p}_mean_fake``, ``{p}_std_real``, ``{p}_std_fake``, ``{p}_var_real``,
        ``{p}_var_fake`` for every property p, and ``cov_{p}_{q}_real``, ``cov_{p}_{q}_fake`` for every
        pair p before q in ``real``'s order. Population moments (``ddof=0``).
    """
    keys = list(real)
    out: dict[str, float] = {}
    for tag, props in (("real", real), ("fake", fake)):
        m = moments(stack_properties(props, keys))
        for i, p in enumerate(keys):
            out[f"{p}_mean_{tag}"] = float(m["mean"][i])
            out[f"{p}_std_{tag}"] = float(m["std"][i])
            out[f"{p}_var_{tag}"] = float(m["var"][i])
        for i, j in _pairs(keys):
            out[f"cov_{keys[i]}_{keys[j]}_{tag}"] = float(m["cov"][i, j])
    return out


def moment_errors(real: Properties, fake: Properties, cond: Properties | None = None) -> dict[str, float]:
    """Moment errors of the generated sample in units of the real spread.

    For every property p (with real mean/std ``m_r, s_r`` and generated ``m_f, s_f``):

    - ``{p}_mean_err = (m_f - m_r) / s_r``, the mean shift in real standard deviations;
    - ``{p}_std_rel_err = s_f / s_r - 1``;

    and for every pair p before q in ``real``'s order:

    - ``cov_{p}_{q}_err = (cov_f - cov_r) / (s_r[p] * s_r[q])``, the covariance difference in units of
      the real stds (scale-free, like the two above; for standardized data it is the correlation
      difference).

    ``max_abs_err`` is the largest absolute mean or std error over the properties: one number to
    select a checkpoint on (``metric.monitor=moments/max_abs_err``) where the moments are the goal.

    Where a real std is 0 (Calvo Ordoñez's (2022) sigma = 0 toy data) the division is skipped: the mean error is
    the absolute difference ``m_f - m_r``, the std error is ``s_f`` and the covariance error the raw
    difference.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.

    Returns:
        Flat dict of floats with the keys above.
    """
    keys = list(real)
    mr = moments(stack_properties(real, keys))
    mf = moments(stack_properties(fake, keys))
    out: dict[str, float] = {}
    for i, p in enumerate(keys):
        s = mr["std"][i]
        diff = mf["mean"][i] - mr["mean"][i]
        out[f"{p}_mean_err"] = float(diff / s if s > 0 else diff)
        out[f"{p}_std_rel_err"] = float(mf["std"][i] / s - 1.0 if s > 0 else mf["std"][i])
    for i, j in _pairs(keys):
        scale = mr["std"][i] * mr["std"][j]
        diff = mf["cov"][i, j] - mr["cov"][i, j]
        out[f"cov_{keys[i]}_{keys[j]}_err"] = float(diff / scale if scale > 0 else diff)
    out["max_abs_err"] = max(abs(out[f"{p}_{k}"]) for p in keys for k in ("mean_err", "std_rel_err"))
    return out


def _rel(real: float, fake: float) -> str:
    if real != 0:
        return f"{(fake - real) / abs(real):+.2%}"
    return f"{fake - real:+.6f} abs"


def _in_units(diff: float, unit: float, suffix: str) -> str:
    return f"{diff / unit:+.3f}{suffix}" if unit > 0 else f"{diff:+.6f} abs"


def _cell(v: float, width: int) -> str:
    """``v`` with 6 decimals when that fits ``width``, else 6 significant digits (``1.28022e+10``)."""
    text = f"{v:.6f}"
    return f"{text if len(text) <= width else f'{v:.6g}':>{width}}"


def format_moment_table(real: Properties, fake: Properties, title: str = "") -> str:
    """Plain-text comparison table of real vs generated moments, after the statistics table of
    Calvo Ordoñez's "Study of Generative Machine Learning Methods for Particle Physics" (Figure 23).

    Rows ``mean``, ``std``, ``variance`` with, per property, the columns ``real``, ``generated``
    and ``error``; below them one ``covariance`` row per pair of properties. The error of a mean is
    in units of the real standard deviation (``+0.050σ``, as ``moments/<p>_mean_err``), so it does
    not explode where the mean is near 0; of a std or variance it is relative (percent); of a
    covariance it is in units of the product of the two real standard deviations (``σσ``). Where
    that unit is 0 the absolute difference is printed, marked ``abs``. Population moments
    (``ddof=0``). The last line says so.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        title: optional first line.

    Returns:
        The table as one string (no trailing newline).
    """
    keys = list(real)
    mr = moments(stack_properties(real, keys))
    mf = moments(stack_properties(fake, keys))
    cols = ("real", "generated", "error")
    pair_labels = {(i, j): f"covariance({keys[i]},{keys[j]})" for i, j in _pairs(keys)}
    w, lw = 14, max([10, *map(len, pair_labels.values())]) + 2
    lines = [title] if title else []
    lines.append(" " * lw + "".join(f"{p:^{3 * w}}" for p in keys))
    lines.append(" " * lw + "".join(f"{c:>{w}}" for _ in keys for c in cols))
    sigma = mr["std"]
    for label, stat in (("mean", "mean"), ("std", "std"), ("variance", "var")):
        cells = ""
        for i in range(len(keys)):
            r, f = float(mr[stat][i]), float(mf[stat][i])
            err = _in_units(f - r, float(sigma[i]), "σ") if stat == "mean" else _rel(r, f)
            cells += f" {_cell(r, w - 1)} {_cell(f, w - 1)} {err:>{w - 1}}"  # a space between columns, always
        lines.append(f"{label:<{lw}}" + cells)
    for i, j in _pairs(keys):
        r, f = float(mr["cov"][i, j]), float(mf["cov"][i, j])
        err = _in_units(f - r, float(sigma[i] * sigma[j]), "σσ")
        lines.append(f"{pair_labels[i, j]:<{lw}} {_cell(r, w - 1)} {_cell(f, w - 1)} {err:>{w - 1}}")
    lines.append("error: mean in units of the real σ, std and variance relative, covariance in units of σ_i σ_j")
    return "\n".join(lines)
