"""TPC-FastSim digits files: the events (responses and features) and their reader."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

#: Model-visible conditions (Malchenko et al. 2022 (TPC fast simulation) section 3.2): only the fractional part of the
#: pad coordinate
#: matters, while the drift length enters both absolutely and as its fractional part.
CONDITION_NAMES = (
    "crossing_angle",
    "dip_angle",
    "drift_length",
    "drift_length_frac",
    "pad_coordinate_frac",
)

#: Affine condition scaling of the baseline (TPC-FastSim ``preprocess_features``): angles divided by
#: their range, drift length mapped from [35, 290] to [-1, 1]; fractional parts are left as they are.
CONDITION_SHIFT = (0.0, 0.0, 162.5, 0.0, 0.0)
CONDITION_SCALE = (20.0, 60.0, 127.5, 1.0, 1.0)

#: Units of the track variables (shared/data/tpc/README.md: degrees; drift length in time buckets and the
#: pad coordinate in pads, the readout's own units).
UNITS = {"crossing_angle": "deg", "dip_angle": "deg", "drift_length": "time bucket",
         "drift_length_frac": "time bucket", "pad_coordinate": "pad", "pad_coordinate_frac": "pad"}


@dataclass(frozen=True, eq=False)
class TPCEvents:
    """A set of TPC events in data space.

    Attributes:
        images: (N, P, T) float32 amplitudes, P pads x T time buckets (8 x 16 by default).
        features: (N, F) float32 raw feature columns, in the order of ``names``.
        names: the F feature names.
        pad_feature: name of the column holding the pad coordinate (pad units).
        time_feature: name of the column holding the drift length (time-bucket units).
        n_out_of_window_hits: hits (cells above threshold) that fell outside the window: not in
            ``images``, counted here.
        n_out_of_window_events: events with at least one such hit (they are kept).
        n_duplicate_hits: hits that repeated a (pad, time) cell of the same event; their
            amplitudes were added.
        source: the file read, or the generator that made the events.
    """

    images: np.ndarray
    features: np.ndarray
    names: tuple[str, ...]
    pad_feature: str = "pad_coordinate"
    time_feature: str = "drift_length"
    n_out_of_window_hits: int = 0
    n_out_of_window_events: int = 0
    n_duplicate_hits: int = 0
    source: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def column(self, name: str) -> np.ndarray:
        """The raw feature column ``name``, shape (N,)."""
        if name not in self.names:
            raise KeyError(f"no feature {name!r}; features are {list(self.names)}")
        return self.features[:, self.names.index(name)]

    def profile_variables(self) -> dict[str, np.ndarray]:
        """All raw feature columns plus ``<pad>_frac`` and ``<time>_frac`` (each (N,) float64).

        With the default names this holds every entry of :data:`CONDITION_NAMES`; it is the ``cond``
        argument of :func:`gentwin.domains.tpc.metrics.tpc_chi2`.
        """
        out = {name: self.features[:, i].astype(np.float64) for i, name in enumerate(self.names)}
        out[f"{self.time_feature}_frac"] = out[self.time_feature] % 1.0
        out[f"{self.pad_feature}_frac"] = out[self.pad_feature] % 1.0
        return out

    def conditions(self, names=CONDITION_NAMES, normalize: bool = True) -> np.ndarray:
        """Model-visible condition vectors, (N, len(names)) float32.

        Args:
            names: entries of :meth:`profile_variables`; default the five of Malchenko et al. 2022 section 3.2.
            normalize: apply the baseline's affine scaling (:data:`CONDITION_SHIFT`,
                :data:`CONDITION_SCALE`); only defined for the default ``names``.
        """
        variables = self.profile_variables()
        c = np.stack([variables[name] for name in names], axis=1)
        if normalize:
            if tuple(names) != CONDITION_NAMES:
                raise ValueError("normalize=True is defined only for names=CONDITION_NAMES")
            c = (c - np.asarray(CONDITION_SHIFT)) / np.asarray(CONDITION_SCALE)
        return c.astype(np.float32)

    def subset(self, index) -> TPCEvents:
        """The events selected by ``index``; the counts refer to the whole set they came from."""
        return TPCEvents(
            images=self.images[index],
            features=self.features[index],
            names=self.names,
            pad_feature=self.pad_feature,
            time_feature=self.time_feature,
            n_out_of_window_hits=self.n_out_of_window_hits,
            n_out_of_window_events=self.n_out_of_window_events,
            n_duplicate_hits=self.n_duplicate_hits,
            source=self.source,
        )

    def split(self, test_fraction: float = 0.25, seed: int = 0) -> tuple[TPCEvents, TPCEvents]:
        """Random (train, test) split; 75:25 by default as in Malchenko et al. 2022 and the baseline."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_test = int(round(test_fraction * len(self)))
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))


def check_window(pad_window, time_window) -> tuple[tuple[int, int], tuple[int, int]]:
    pad_window = (int(pad_window[0]), int(pad_window[1]))
    time_window = (int(time_window[0]), int(time_window[1]))
    if pad_window[1] <= pad_window[0] or time_window[1] <= time_window[0]:
        raise ValueError(f"empty window: pad {pad_window}, time {time_window}")
    return pad_window, time_window


def read_digits(
    path: str | PathLike,
    feature_names: list[str],
    pad_window: tuple[int, int] = (-3, 5),
    time_window: tuple[int, int] = (-7, 9),
    pad_feature: str = "pad_coordinate",
    time_feature: str = "drift_length",
) -> TPCEvents:
    """Read a TPC-FastSim ``digits.dat`` file (format: ``shared/data/tpc/README.md``).

    Each event is a ``params: f1 ... fF`` line followed by a line of ``ipad itime amp`` triples. A hit
    goes to ``image[ipad - int(pad) - pad_window[0], itime - int(drift) - time_window[0]]``; with the
    default windows that is ``[ipad - int(pad) + 3, itime - int(drift) + 7]`` of an 8 x 16 image.
    Hits outside the window are not dropped silently: they are counted in the result (and warned
    about). Hits repeating a cell of the same event are summed and counted.

    Args:
        path: the digits file.
        feature_names: names of the F columns of every ``params:`` line (from the config).
        pad_window: pad offsets [lo, hi) kept around ``int(pad_coordinate)``.
        time_window: time-bucket offsets [lo, hi) kept around ``int(drift_length)``.
        pad_feature: the feature holding the pad coordinate.
        time_feature: the feature holding the drift length.

    Returns:
        TPCEvents with images (N, hi-lo pads, hi-lo time buckets) and features (N, F).

    Raises:
        ValueError: naming the file and line number for a malformed line, a wrong number of
            features, a negative amplitude, a file ending in a params line or without a newline after
            its last line (cut short); or for unusable ``feature_names``.
    """
    path = Path(path)
    names = tuple(feature_names)
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate feature names: {list(names)}")
    for needed in (pad_feature, time_feature):
        if needed not in names:
            raise ValueError(f"feature_names {list(names)} lack the required feature {needed!r}")
    (p_lo, p_hi), (t_lo, t_hi) = check_window(pad_window, time_window)
    i_pad, i_time = names.index(pad_feature), names.index(time_feature)

    from gentwin.errors import not_text

    try:
        with path.open() as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ValueError(not_text(path, e, "a TPC-FastSim digits file of 'params:' and hit lines")) from None
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: empty digits file (expected 'params:' lines, each followed by a hit line)")
    if not text.rstrip(" \t").endswith("\n"):  # a number cut in half may still parse: refuse the file
        raise ValueError(f"{path}:{len(lines)}: the file ends inside this line, with no newline after it: is it cut "
                         f"short? (a complete digits file ends with a newline)")
    if len(lines) % 2:
        raise ValueError(
            f"{path}:{len(lines)}: file ends with a params line and no hit line "
            f"(expected 2 lines per event, found {len(lines)} lines)"
        )

    n_events = len(lines) // 2
    features = np.empty((n_events, len(names)), dtype=np.float64)
    hit_blocks = []
    for k in range(n_events):
        params_no, hits_no = 2 * k + 1, 2 * k + 2
        tokens = lines[2 * k].split()
        if not tokens or tokens[0] != "params:":
            raise ValueError(f"{path}:{params_no}: expected a line starting with 'params:'")
        if len(tokens) - 1 != len(names):
            raise ValueError(
                f"{path}:{params_no}: expected {len(names)} features {list(names)}, found {len(tokens) - 1}"
            )
        try:
            features[k] = [float(t) for t in tokens[1:]]
        except ValueError as err:
            raise ValueError(f"{path}:{params_no}: malformed feature value ({err})") from None
        tokens = lines[2 * k + 1].split()
        if tokens and tokens[0] == "params:":
            raise ValueError(f"{path}:{hits_no}: expected a hit line, found a params line")
        if len(tokens) % 3:
            raise ValueError(f"{path}:{hits_no}: {len(tokens)} values is not a list of (ipad, itime, amp) triples")
        try:
            hit_blocks.append(np.array(tokens, dtype=np.float64).reshape(-1, 3))
        except ValueError as err:
            raise ValueError(f"{path}:{hits_no}: malformed hit value ({err})") from None

    # Value checks and placement for all events at once; a failing row is traced back to its line.
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise ValueError(f"{path}:{2 * int(np.argmax(bad)) + 1}: non-finite feature value")
    n_hits = np.array([len(h) for h in hit_blocks], dtype=np.int64)
    event = np.repeat(np.arange(n_events), n_hits)
    hits = np.concatenate(hit_blocks) if n_events else np.empty((0, 3))
    for bad, what in (
        (~np.isfinite(hits).all(axis=1), "non-finite hit value"),
        ((hits[:, :2] != np.round(hits[:, :2])).any(axis=1), "non-integer pad or time index"),
    ):
        if bad.any():
            raise ValueError(f"{path}:{2 * int(event[np.argmax(bad)]) + 2}: {what}")
    if (hits[:, 2] < 0).any():  # zero-suppressed signals: a negative one is a damaged or foreign file
        first = int(np.argmax(hits[:, 2] < 0))
        raise ValueError(f"{path}:{2 * int(event[first]) + 2}: negative amplitude {hits[first, 2]:g} (a digits file "
                         f"holds the signals above threshold, >= 0)")

    n_pad, n_time = p_hi - p_lo, t_hi - t_lo
    pad = hits[:, 0].astype(np.int64) - features[event, i_pad].astype(np.int64) - p_lo
    time = hits[:, 1].astype(np.int64) - features[event, i_time].astype(np.int64) - t_lo
    inside = (pad >= 0) & (pad < n_pad) & (time >= 0) & (time < n_time)
    n_out_per_event = np.bincount(event[~inside], minlength=n_events)
    n_out_hits, n_out_events = int(n_out_per_event.sum()), int((n_out_per_event > 0).sum())
    cells = (event[inside] * n_pad + pad[inside]) * n_time + time[inside]
    n_dup = len(cells) - len(np.unique(cells))
    images = np.zeros(n_events * n_pad * n_time, dtype=np.float64)
    np.add.at(images, cells, hits[inside, 2])
    images = images.reshape(n_events, n_pad, n_time)

    if n_out_hits:
        warnings.warn(
            f"{path}: {n_out_hits} hits in {n_out_events} events fall outside the pad window "
            f"{pad_window} x time window {time_window}; they are counted, not stored",
            stacklevel=2,
        )
    if n_dup:
        warnings.warn(f"{path}: {n_dup} hits repeat a cell of their event; amplitudes were summed", stacklevel=2)
    return TPCEvents(
        images=images.astype(np.float32),
        features=features.astype(np.float32),
        names=names,
        pad_feature=pad_feature,
        time_feature=time_feature,
        n_out_of_window_hits=n_out_hits,
        n_out_of_window_events=int(n_out_events),
        n_duplicate_hits=int(n_dup),
        source=str(path),
    )


# ----------------------------------------------------------------------------------------------
# Monte Carlo
