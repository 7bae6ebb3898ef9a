"""Named features of samples of any shape: every column when there are few, else summaries.

The evaluation of a file or of a domain without key properties of its own compares the marginals
of these features. A sample with at most ``max_features`` values is compared column by column; a
larger one (a calorimeter shower of hundreds of voxels, an image) through summaries that the
field's evaluations use for such data: the total, the largest value, the spread over the values,
the share of non-zero values, and for samples of two or more axes the centroid and width along
each axis (weighted by the absolute values).
"""

from __future__ import annotations

import numpy as np


def column_names(shape: tuple[int, ...], prefix: str = "x") -> list[str]:
    """``x0, x1, ...`` for the flattened values of a sample of ``shape``."""
    return [f"{prefix}{i}" for i in range(int(np.prod(shape)))]


def named_features(x: np.ndarray, names: list[str] | None = None, max_features: int = 32) -> dict[str, np.ndarray]:
    """Features of samples ``x`` ``(N, *S)``: the columns by ``names`` (``x0, x1, ...`` when ``None``)
    if there are at most ``max_features`` of them, else the summaries of the module docstring.

    Returns:
        name -> ``(N,)`` float64 array.
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.reshape(len(x), -1)
    if flat.shape[1] <= max_features:
        names = column_names(x.shape[1:]) if names is None else list(names)
        if len(names) != flat.shape[1]:
            raise ValueError(f"{len(names)} feature names for {flat.shape[1]} values per sample")
        return {name: flat[:, i] for i, name in enumerate(names)}
    out = {"sum": flat.sum(1), "max": flat.max(1), "spread": flat.std(1), "nonzero_fraction": (flat != 0).mean(1)}
    if x.ndim >= 3:
        weight = np.abs(x)
        total = np.maximum(weight.reshape(len(x), -1).sum(1), 1e-30)
        for axis in range(1, x.ndim):
            profile = weight.sum(axis=tuple(a for a in range(1, x.ndim) if a != axis)) / total[:, None]
            pos = np.arange(x.shape[axis])
            centre = profile @ pos
            out[f"centroid{axis}"] = centre
            out[f"width{axis}"] = np.sqrt(np.clip(profile @ pos**2 - centre**2, 0, None))
    return out
