"""Responses written back in the TPC-FastSim digits format that ``read_digits`` reads.

The return path of a TPC surrogate: generated 8 x 16 responses and their track parameters become
``params:`` lines and ``ipad itime amp`` hit lines, so a chain (or ``dataset.path``) that reads digits
files reads the surrogate's output as it reads the simulator's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_digits(path: str | Path, images: np.ndarray, named: dict[str, np.ndarray], feature_names,
                 pad_feature: str = "pad_coordinate", time_feature: str = "drift_length",
                 pad_window=(-3, 5), time_window=(-7, 9)) -> str:
    """Writes responses ``images`` ``(N, P, T)`` and their parameters to the digits file ``path``.

    Each event's ``params:`` line holds ``feature_names`` in order, from the data-unit columns ``named``;
    a column it lacks is taken from its fractional part (``pad_coordinate`` from ``pad_coordinate_frac``:
    the responses depend only on it) or written as 0. A cell ``[i, j]`` becomes the hit
    ``int(pad) + pad_window[0] + i, int(drift) + time_window[0] + j``, the inverse of ``read_digits``'
    placement. Cells <= 0 are left out, as the digits format holds only the signals above threshold.
    Written through a temporary file beside ``path`` (``gentwin.atomic``).

    Returns:
        A line saying what was written.
    """
    from gentwin.atomic import write_text

    images = np.asarray(images, np.float32)
    n = len(images)
    columns = []
    for name in feature_names:
        if name in named:
            columns.append(np.asarray(named[name], np.float64))
        elif f"{name}_frac" in named:
            columns.append(np.asarray(named[f"{name}_frac"], np.float64))
        else:
            columns.append(np.zeros(n))
    features = np.stack(columns, 1).astype(np.float32)
    names = list(feature_names)
    pad0 = features[:, names.index(pad_feature)].astype(np.int64) + int(pad_window[0])
    time0 = features[:, names.index(time_feature)].astype(np.int64) + int(time_window[0])
    lines, dropped = [], 0
    for k in range(n):
        lines.append("params: " + " ".join(f"{v:.9g}" for v in features[k]))
        i, j = np.nonzero(images[k] > 0)
        dropped += int((images[k] < 0).sum())
        lines.append(" ".join(f"{pad0[k] + a} {time0[k] + b} {images[k, a, b]:.9g}" for a, b in zip(i, j, strict=True)))
    write_text(path, "\n".join(lines) + "\n")
    hits = sum(len(line.split()) // 3 for line in lines[1::2])
    note = f"; {dropped} negative cells left out (the digits format holds signals >= 0)" if dropped else ""
    return f"wrote {n} responses ({hits} hits) to {path} in the digits format (read_digits){note}"
