"""MPD TPC pad responses: digits-file reader, seeded Monte Carlo, amplitude scaling, key properties,
and the runner's datamodule (``dataset=tpc``: simulated; ``dataset=tpc_mpd``: a digits file).

An event is one track segment crossing one pad row. Its response is an 8 (pad) x 16 (time bucket)
image of amplitudes placed relative to the segment's integer pad coordinate and drift length, with
the segment's feature vector (crossing angle, dip angle, drift length, pad coordinate, ...).

Reference: A. Maevskiy, F. Ratnikov, A. Zinchenko, V. Riabov, "Simulating the Time Projection
Chamber responses at the MPD detector using Generative Adversarial Networks", Eur. Phys. J. C 81,
599 (2021) (the baseline; its public code is TPC-FastSim), and seed 003, section 3.2.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gentwin.data.base import ArrayDataModule
from gentwin.metrics.tpc import PROFILE_VARIABLES

#: Model-visible conditions (seed 003 section 3.2): only the fractional part of the pad coordinate
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

#: Image statistics of :func:`tpc_properties`, in the baseline's order.
PROPERTY_NAMES = ("Mean0", "Mean1", "Sigma0^2", "Sigma1^2", "Cov01", "Sum")


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
        argument of :func:`gentwin.metrics.tpc.tpc_chi2`.
        """
        out = {name: self.features[:, i].astype(np.float64) for i, name in enumerate(self.names)}
        out[f"{self.time_feature}_frac"] = out[self.time_feature] % 1.0
        out[f"{self.pad_feature}_frac"] = out[self.pad_feature] % 1.0
        return out

    def conditions(self, names=CONDITION_NAMES, normalize: bool = True) -> np.ndarray:
        """Model-visible condition vectors, (N, len(names)) float32.

        Args:
            names: entries of :meth:`profile_variables`; default the five of seed 003 section 3.2.
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
        """Random (train, test) split; 75:25 by default as in seed 003 and the baseline."""
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
        perm = np.random.default_rng(seed).permutation(len(self))
        n_test = int(round(test_fraction * len(self)))
        return self.subset(np.sort(perm[n_test:])), self.subset(np.sort(perm[:n_test]))


def _check_window(pad_window, time_window) -> tuple[tuple[int, int], tuple[int, int]]:
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
            features, or a file ending in a params line; or for unusable ``feature_names``.
    """
    path = Path(path)
    names = tuple(feature_names)
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate feature names: {list(names)}")
    for needed in (pad_feature, time_feature):
        if needed not in names:
            raise ValueError(f"feature_names {list(names)} lack the required feature {needed!r}")
    (p_lo, p_hi), (t_lo, t_hi) = _check_window(pad_window, time_window)
    i_pad, i_time = names.index(pad_feature), names.index(time_feature)

    from gentwin.errors import not_text

    try:
        with path.open() as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(not_text(path, e, "a TPC-FastSim digits file of 'params:' and hit lines")) from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise ValueError(f"{path}: empty digits file (expected 'params:' lines, each followed by a hit line)")
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


def _erf(x: np.ndarray) -> np.ndarray:
    """Error function of an array (numpy has none; torch's is vectorized and exact to float precision)."""
    return torch.special.erf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def simulate_tpc(
    n: int,
    rng: np.random.Generator,
    *,
    crossing_angle_range: tuple[float, float] = (-20.0, 20.0),
    dip_angle_range: tuple[float, float] = (-60.0, 60.0),
    drift_length_range: tuple[float, float] = (35.0, 290.0),
    pad_coordinate_range: tuple[float, float] = (28.0, 41.0),
    pad_width_mm: float = 5.0,
    pad_height_mm: float = 15.0,
    bucket_mm: float = 5.4,
    cluster_density_per_mm: float = 2.4,
    max_cluster_size: float = 20000.0,
    cluster_size_exponent: float = 1.2,
    diffusion_t_um: float = 196.0,
    diffusion_l_um: float = 360.0,
    prf_sigma_mm: float = 1.3,
    shaper_sigma: float = 0.8,
    gain: float = 2.4,
    polya_theta: float = 0.5,
    noise_sigma: float = 0.15,
    threshold: float = 0.9,
    pad_window: tuple[int, int] = (-3, 5),
    time_window: tuple[int, int] = (-7, 9),
    pad_margin: int = 2,
    time_margin: int = 4,
    chunk_size: int = 2000,
) -> TPCEvents:
    """Seeded, vectorized Monte Carlo of the pad-row response to a straight track segment.

    Physics, one event at a time (all events are simulated together in chunks):

    1. Geometry. The segment crosses a pad row of height ``pad_height_mm`` (radial direction) with
       crossing angle phi (in the pad plane, from the radial direction) and dip angle lambda (from the
       pad plane). Its length is ``h / (cos phi cos lambda)``; across the row it spans ``h tan phi``
       (pads ``pad_width_mm`` wide) and along the drift ``h tan lambda / cos phi`` (time buckets of
       ``bucket_mm`` of drift). Its centre is at ``pad_coordinate`` (pad ``i`` is centred at ``i``)
       and ``drift_length`` (bucket ``t`` is centred at ``t``). The sign convention (time offset
       ``-s tan lambda``) gives the pad-time covariance the sign it has in the MPD file.
    2. Ionization. A Poisson number of primary clusters with mean ``cluster_density_per_mm`` x length,
       uniform along the segment. Cluster sizes (electrons) are heavy-tailed: the floor of a Pareto
       variate, P(size >= n) = n^-a with a = ``cluster_size_exponent``, truncated at
       ``max_cluster_size``. a = 1 is the 1/n^2 law of delta electrons that makes the energy loss
       Landau-like; the default a = 1.2 matches the file's integrated-amplitude quantiles.
    3. Drift. Each electron diffuses by ``diffusion_t_um`` (across pads) and ``diffusion_l_um``
       (along the drift) per sqrt(cm) of drift, i.e. sigma proportional to sqrt(drift_length). A
       cluster of n electrons is treated as a Gaussian cloud: its centroid moves by sigma / sqrt(n)
       and its spread is sigma^2 (1 - 1/n), which keeps the first two moments of the n electrons.
    4. Gain. Each electron is amplified with a Polya (gamma) distributed gain of shape
       ``1 + polya_theta`` and mean ``gain`` (ADC units per electron, i.e. gas gain x electronics);
       the sum over a cluster is gamma distributed with shape n (1 + polya_theta).
    5. Pad response. The avalanche induces a Gaussian charge of width ``prf_sigma_mm`` on the pad
       plane, integrated over each pad's width.
    6. Time shaping. The shaper's impulse response is a Gaussian of width ``shaper_sigma`` buckets
       (a semi-Gaussian CR-RC^n shaper, n >= 4, is close to one), peaking at the arrival time, sampled
       at the bucket centres. (The MPD file's mean time profile is symmetric about ``drift_length``.)
    7. Electronics. Gaussian noise of ``noise_sigma`` (ADC) per cell, then zero suppression: cells
       below ``threshold`` read 0 (the MPD file's smallest amplitude is 0.90).

    The response is computed on the window enlarged by ``pad_margin`` pads and ``time_margin``
    buckets on each side; cells above threshold outside the window are counted as out-of-window
    hits. Defaults are effective values fitted to the MPD file ``digits_v4plus_shortFixedPt.dat``:
    mean squared widths and their growth with drift length, dip and crossing angle, the quantiles of
    the integrated amplitude up to the 95th percentile, hits per event. They are close to MPD's
    nominal values (pads 5 x 12 mm in the inner rows, 5.5 cm/us drift sampled at 10 MHz, Ar/CH4
    90/10 in 0.5 T); the extreme amplitude tail of the file (99th percentile 20 x the median, here
    about 9 x) is not reproduced.

    Args:
        n: number of events.
        rng: numpy generator; the result is a deterministic function of its state.
        crossing_angle_range, dip_angle_range: uniform ranges of the angles, degrees.
        drift_length_range: uniform range of the drift length, time buckets.
        pad_coordinate_range: uniform range of the pad coordinate, pads.
        pad_width_mm, pad_height_mm: pad size across the row and along the radius.
        bucket_mm: drift distance per time bucket (drift velocity x sampling period).
        cluster_density_per_mm: mean number of primary clusters per mm of track.
        max_cluster_size: largest cluster, electrons.
        diffusion_t_um, diffusion_l_um: transverse, longitudinal diffusion, micrometres / sqrt(cm).
        prf_sigma_mm: width of the induced charge on the pad plane.
        shaper_sigma: width of the shaper response, time buckets.
        gain: mean signal per drifting electron, ADC units.
        polya_theta: Polya parameter of the single-electron gain (0 is exponential).
        noise_sigma: electronic noise per cell, ADC units.
        threshold: zero-suppression threshold, ADC units.
        pad_window, time_window: image window (offsets from the integer pad coordinate and drift
            length), as in :func:`read_digits`.
        pad_margin, time_margin: extra cells each side used to count out-of-window hits.
        chunk_size: events per vectorized batch (memory bound).

    Returns:
        TPCEvents with features crossing_angle, dip_angle, drift_length, pad_coordinate.
    """
    (p_lo, p_hi), (t_lo, t_hi) = _check_window(pad_window, time_window)
    n = int(n)
    names = ("crossing_angle", "dip_angle", "drift_length", "pad_coordinate")
    features = np.stack(
        [
            rng.uniform(*crossing_angle_range, size=n),
            rng.uniform(*dip_angle_range, size=n),
            rng.uniform(*drift_length_range, size=n),
            rng.uniform(*pad_coordinate_range, size=n),
        ],
        axis=1,
    )
    # Cell centres of the enlarged window, relative to int(pad coordinate), int(drift length).
    pads = np.arange(p_lo - pad_margin, p_hi + pad_margin, dtype=np.float64)
    times = np.arange(t_lo - time_margin, t_hi + time_margin, dtype=np.float64)
    inner = (slice(pad_margin, pad_margin + p_hi - p_lo), slice(time_margin, time_margin + t_hi - t_lo))

    physics = dict(
        pad_width_mm=pad_width_mm,
        pad_height_mm=pad_height_mm,
        bucket_mm=bucket_mm,
        cluster_density_per_mm=cluster_density_per_mm,
        max_cluster_size=max_cluster_size,
        cluster_size_exponent=cluster_size_exponent,
        diffusion_t_um=diffusion_t_um,
        diffusion_l_um=diffusion_l_um,
        prf_sigma_mm=prf_sigma_mm,
        shaper_sigma=shaper_sigma,
        gain=gain,
        polya_theta=polya_theta,
    )
    images = np.zeros((n, p_hi - p_lo, t_hi - t_lo), dtype=np.float32)
    n_out_hits = n_out_events = 0
    for start in range(0, n, chunk_size):
        f = features[start : start + chunk_size]
        full = _simulate_chunk(f, rng, pads, times, **physics)
        full += rng.normal(0.0, noise_sigma, size=full.shape) if noise_sigma > 0 else 0.0
        full = np.where(full >= threshold, full, 0.0)
        img = full[:, inner[0], inner[1]]
        n_out = (full > 0).sum(axis=(1, 2)) - (img > 0).sum(axis=(1, 2))
        n_out_hits += int(n_out.sum())
        n_out_events += int((n_out > 0).sum())
        images[start : start + chunk_size] = img
    return TPCEvents(
        images=images,
        features=features.astype(np.float32),
        names=names,
        n_out_of_window_hits=n_out_hits,
        n_out_of_window_events=n_out_events,
        source="simulate_tpc",
    )


def _simulate_chunk(
    f: np.ndarray,
    rng: np.random.Generator,
    pads: np.ndarray,
    times: np.ndarray,
    *,
    pad_width_mm: float,
    pad_height_mm: float,
    bucket_mm: float,
    cluster_density_per_mm: float,
    max_cluster_size: float,
    cluster_size_exponent: float,
    diffusion_t_um: float,
    diffusion_l_um: float,
    prf_sigma_mm: float,
    shaper_sigma: float,
    gain: float,
    polya_theta: float,
) -> np.ndarray:
    """Noise-free response (B, len(pads), len(times)) of the events with features f (B, 4)."""
    b = len(f)
    phi, lam = np.deg2rad(f[:, 0]), np.deg2rad(f[:, 1])
    drift, pad_coord = f[:, 2], f[:, 3]
    length = pad_height_mm / (np.cos(phi) * np.cos(lam))
    span_pad = pad_height_mm * np.tan(phi) / pad_width_mm
    span_time = -pad_height_mm * np.tan(lam) / np.cos(phi) / bucket_mm
    drift_cm = drift * bucket_mm / 10.0
    sig_t = diffusion_t_um * 1e-3 * np.sqrt(drift_cm) / pad_width_mm  # pads
    sig_l = diffusion_l_um * 1e-3 * np.sqrt(drift_cm) / bucket_mm  # buckets

    # Clusters of all events in one flat array; ev is the event of each cluster.
    n_clusters = rng.poisson(cluster_density_per_mm * length)
    ev = np.repeat(np.arange(b), n_clusters)
    c = len(ev)
    s = rng.uniform(-0.5, 0.5, size=c)
    u = rng.uniform(size=c)
    a = cluster_size_exponent
    size = np.floor((1.0 - u * (1.0 - max_cluster_size**-a)) ** (-1.0 / a))
    charge = rng.gamma(size * (1.0 + polya_theta), gain / (1.0 + polya_theta))
    mu_pad = (pad_coord % 1.0)[ev] + s * span_pad[ev] + rng.normal(size=c) * sig_t[ev] / np.sqrt(size)
    mu_time = (drift % 1.0)[ev] + s * span_time[ev] + rng.normal(size=c) * sig_l[ev] / np.sqrt(size)
    keep = 1.0 - 1.0 / size
    w_pad = np.sqrt(sig_t[ev] ** 2 * keep + (prf_sigma_mm / pad_width_mm) ** 2)
    w_time = np.sqrt(sig_l[ev] ** 2 * keep + shaper_sigma**2)

    # float32 kernels: the per-cluster fractions need no more precision and run twice as fast.
    f32 = np.float32
    edges = np.concatenate([pads - 0.5, pads[-1:] + 0.5]).astype(f32)
    z_pad = (edges[None, :] - mu_pad[:, None].astype(f32)) / (math.sqrt(2.0) * w_pad[:, None]).astype(f32)
    pad_q = np.diff(_erf(z_pad), axis=1) * (0.5 * charge[:, None]).astype(f32)  # (C, P)
    z = (times[None, :].astype(f32) - mu_time[:, None].astype(f32)) / w_time[:, None].astype(f32)
    time_resp = np.exp(-0.5 * z * z) / (math.sqrt(2.0 * math.pi) * w_time[:, None]).astype(f32)  # (C, T)

    # Sum of outer products per event as one batched matmul over clusters padded to the longest event.
    m = max(int(n_clusters.max(initial=0)), 1)
    slot = np.arange(c) - np.repeat(np.cumsum(n_clusters) - n_clusters, n_clusters)
    lhs = np.zeros((b, m, len(pads)), dtype=np.float32)
    rhs = np.zeros((b, m, len(times)), dtype=np.float32)
    lhs[ev, slot] = pad_q
    rhs[ev, slot] = time_resp
    return np.matmul(lhs.transpose(0, 2, 1), rhs).astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Scaling


def log_scale(x: np.ndarray) -> np.ndarray:
    """Baseline amplitude scaling y = log10(1 + x) (TPC-FastSim ``scalers.Logarithmic``)."""
    return np.log1p(x) / np.log(10.0)


def log_unscale(y: np.ndarray) -> np.ndarray:
    """Exact inverse of :func:`log_scale`: x = 10**y - 1."""
    return np.expm1(y * np.log(10.0))


class LogScale(nn.Module):
    """Amplitude scaler y = log10(1 + x) of the baseline, with its exact inverse.

    ``forward`` maps data space (amplitudes >= 0) to model space; ``inverse`` maps back. An amplitude
    of 1 (about the zero-suppression threshold) is y = log10(2), the threshold T of the generator's
    output activation.
    """

    def fit(self, x: torch.Tensor) -> LogScale:
        """Nothing to fit; refuses data outside the domain x > -1 (``transforms`` contract)."""
        if (x <= -1).any():
            raise ValueError(f"LogScale needs amplitudes > -1, the data hold {x.min().item():.4g}")
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x) / math.log(10.0)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.expm1(y * math.log(10.0))

    def log_abs_det_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """log |d forward / dx| summed over each sample's cells, (B,): flows' data-space densities."""
        return -(torch.log1p(x) + math.log(math.log(10.0))).flatten(1).sum(1)


# ----------------------------------------------------------------------------------------------
# Properties


def tpc_properties(x, c=None) -> dict[str, np.ndarray]:
    """Key properties of TPC responses (the baseline's validation metrics), each (N,) float64.

    With weights w = A / sum(A) over the image cells (negative amplitudes clipped to 0, as in the
    baseline) and cell indices i (pad, 0..P-1) and j (time, 0..T-1):
    Mean0 = E_w[i], Mean1 = E_w[j], Sigma0^2 = Var_w[i], Sigma1^2 = Var_w[j],
    Cov01 = Cov_w[i, j], Sum = sum(A).

    Images with zero total amplitude have no barycenter: their five moments are NaN and their Sum is
    0; :func:`gentwin.metrics.tpc.tpc_chi2` excludes and counts them.

    Args:
        x: (N, P, T) images in data space (numpy array or tensor).
        c: the conditions; unused (the moments are taken in window coordinates, as in the baseline),
            accepted for the ``properties(x, c)`` contract of the data modules.

    Returns:
        dict with keys :data:`PROPERTY_NAMES`.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"expected images (N, P, T), got shape {x.shape}")
    x = np.clip(x, 0.0, None)
    total = x.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        w = x / total[:, None, None]
    i = np.arange(x.shape[1], dtype=np.float64)
    j = np.arange(x.shape[2], dtype=np.float64)
    w_pad, w_time = w.sum(axis=2), w.sum(axis=1)
    mean0, mean1 = w_pad @ i, w_time @ j
    return {
        "Mean0": mean0,
        "Mean1": mean1,
        "Sigma0^2": w_pad @ i**2 - mean0**2,
        "Sigma1^2": w_time @ j**2 - mean1**2,
        "Cov01": np.einsum("nij,i,j->n", w, i, j) - mean0 * mean1,
        "Sum": total,
    }


# ----------------------------------------------------------------------------------------------
# Runner: datamodule, critic and metric adapters


def on_valid_events(real: dict, fake: dict, cond: dict | None = None, *, metric, **params) -> dict[str, float]:
    """Metric-entry adapter: ``metric`` on the events whose properties are all finite.

    Images with zero total amplitude have NaN moments (:func:`tpc_properties`); distances on the
    statistic vectors need finite values. Each side keeps its own valid events; the count left out
    is :func:`gentwin.metrics.tpc.tpc_chi2`'s ``n_invalid_fake``.

    Args:
        real, fake: property dicts, each ``name -> (N,)``.
        cond: passed through (unused by the distances).
        metric: an entry ``(real, fake, cond=None, **params) -> dict``.
    """
    def keep(props):
        ok = np.all([np.isfinite(np.asarray(v, dtype=np.float64)) for v in props.values()], axis=0)
        return {k: np.asarray(v)[ok] for k, v in props.items()}, int(ok.sum())

    (real, n_real), (fake, n_fake) = keep(real), keep(fake)
    if n_real < 2 or n_fake < 2:
        return {"n_valid_fake": float(n_fake)}
    return metric(real, fake, cond, **params)


class TPCDataModule(ArrayDataModule):
    """TPC pad responses: 8 x 16 images conditioned on the track segment (seed 003 section 3.2).

    ``path=None`` simulates ``n`` events with :func:`simulate_tpc` (``dataset=tpc``); a path reads a
    TPC-FastSim digits file with :func:`read_digits` (``dataset=tpc_mpd``), whose ``params:`` columns
    are named by ``feature_names``. The model sees the conditions ``condition_names`` (by default the
    baseline's five, affinely scaled as TPC-FastSim does); :meth:`conditions` maps them back to the
    raw profile variables of the chi2, so the held-out split's profile variables are exact up to
    float32 rounding of the scaled values.

    Args:
        path: digits file, or ``None`` to simulate.
        feature_names: names of the file's feature columns (any number); must include
            ``pad_feature`` and ``time_feature``.
        pad_feature, time_feature: the columns holding the pad coordinate and the drift length.
        pad_window, time_window: image window, see :func:`read_digits`.
        condition_names: model-visible conditions, entries of :meth:`TPCEvents.profile_variables`.
        normalize: apply the baseline's affine scaling (defined for the default ``condition_names``).
        simulator: keyword parameters of :func:`simulate_tpc` (physics, ranges).
        n: events to simulate; for a file the first ``n`` events (``None``: all).
        **kwargs: ``ArrayDataModule`` arguments (``val_fraction``, ``batch_size``, ``transform``, ...).
    """

    def __init__(
        self,
        path: str | None = None,
        feature_names=None,
        pad_feature: str = "pad_coordinate",
        time_feature: str = "drift_length",
        pad_window=(-3, 5),
        time_window=(-7, 9),
        condition_names=CONDITION_NAMES,
        normalize: bool = True,
        simulator: dict | None = None,
        n: int | None = 20_000,
        **kwargs,
    ):
        super().__init__(n=n, **kwargs)
        self.path = None if path is None else str(path)
        self.feature_names = None if feature_names is None else list(feature_names)
        self.pad_feature, self.time_feature = pad_feature, time_feature
        self.pad_window, self.time_window = tuple(pad_window), tuple(time_window)
        self.cond_names = list(condition_names)
        self.normalize = normalize
        self.simulator = dict(simulator or {})
        k = len(self.cond_names)
        if normalize and tuple(self.cond_names) == CONDITION_NAMES:
            self.cond_shift, self.cond_scale = np.asarray(CONDITION_SHIFT), np.asarray(CONDITION_SCALE)
        else:
            self.cond_shift, self.cond_scale = np.zeros(k), np.ones(k)
        self.events: TPCEvents | None = None

    def build(self, rng):
        from gentwin.errors import ConfigError, DataError

        if self.normalize and tuple(self.cond_names) != CONDITION_NAMES:
            raise ConfigError(
                f"dataset.normalize=true is defined for the baseline's conditions {list(CONDITION_NAMES)}; "
                f"set dataset.normalize=false for {self.cond_names}"
            )
        if self.path is None:
            if self.n is None:
                raise ConfigError("dataset.path is not set: give a digits file (dataset.path=<file>), or "
                                  "dataset.n=<events> to simulate them")
            events = simulate_tpc(self.n, rng, pad_window=self.pad_window, time_window=self.time_window,
                                  **self.simulator)
        else:
            if not self.feature_names:
                raise ConfigError("dataset.feature_names must name the columns of the params: lines")
            path = Path(self.path).expanduser()
            if not path.is_file():
                raise DataError(f"{path}: no such digits file (dataset.path)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the counts are reported by describe() and summary()
                events = read_digits(path, self.feature_names, self.pad_window, self.time_window,
                                     self.pad_feature, self.time_feature)
            if self.n is not None:
                events = events.subset(slice(0, self.n))
        variables = events.profile_variables()
        unknown = [c for c in self.cond_names if c not in variables]
        if unknown:
            raise ConfigError(f"dataset.condition_names {unknown} are not among {sorted(variables)}")
        self.events = events
        return events.images, self.condition_vectors(variables)

    # -- conditions -----------------------------------------------------------------------------
    def condition_vectors(self, named: dict[str, np.ndarray]) -> np.ndarray:
        """Model-visible conditions ``(N, C)`` float32 from named columns in data units.

        A missing ``<v>_frac`` is taken as ``<v> % 1`` when ``<v>`` is given (e.g. ``pad_coordinate``).
        """
        cols = []
        for name in self.cond_names:
            if name in named:
                cols.append(np.asarray(named[name], dtype=np.float64))
            elif name.endswith("_frac") and name[: -len("_frac")] in named:
                cols.append(np.asarray(named[name[: -len("_frac")]], dtype=np.float64) % 1.0)
            else:
                raise KeyError(f"missing condition {name!r}; need columns {self.cond_names}")
        c = np.stack(cols, axis=1) if cols else np.empty((0, 0))
        return ((c - self.cond_shift) / self.cond_scale).astype(np.float32)

    def conditions(self, c):
        """Raw profile variables (data units, float64) of model-visible conditions ``c`` ``(N, C)``."""
        if c is None:
            return None
        raw = np.asarray(c, dtype=np.float64) * self.cond_scale + self.cond_shift
        return {name: raw[:, i] for i, name in enumerate(self.cond_names)}

    # -- evaluation -----------------------------------------------------------------------------
    def properties(self, x, c=None):
        return tpc_properties(x)

    def figures(self, real, fake, c):
        from gentwin.metrics.tpc import tpc_profiles
        from gentwin.plots_tpc import profile_figure, response_grid

        cond = self.conditions(c)
        variables = [v for v in PROFILE_VARIABLES if v in cond]
        profiles = tpc_profiles(tpc_properties(real), tpc_properties(fake), cond, variables=variables,
                                statistics=PROPERTY_NAMES, n_bootstrap=20)
        return {"profiles": profile_figure(profiles), "responses": response_grid(real, fake, cond)}

    def window_counts(self) -> str:
        ev = self.events
        if ev is None:
            return ""
        return (f"{ev.source}: {ev.n_out_of_window_hits} hits in {ev.n_out_of_window_events} events outside the "
                f"window pad {self.pad_window} x time {self.time_window} (counted, not stored); "
                f"{ev.n_duplicate_hits} repeated cells summed")

    def describe(self) -> str:
        return f"{super().describe()}\n{self.window_counts()}"

    def summary(self, real, fake):
        """The chi2 of the final samples, its largest terms, and the out-of-window counts."""
        from gentwin.metrics.tpc import tpc_chi2

        cond = self.conditions(self.c_raw_val[self.eval_slice()])
        if len(next(iter(real.values()))) != len(next(iter(cond.values()))):
            return self.window_counts()
        variables = [v for v in PROFILE_VARIABLES if v in cond]
        r = tpc_chi2(real, fake, cond, variables=variables)
        terms = sorted(((k[5:], v) for k, v in r.items() if k.startswith("term/")), key=lambda kv: -kv[1])
        n = len(cond[variables[0]]) if variables else 0
        lines = [f"TPC profile chi2 on {n} held-out events: chi2 {r['chi2']:.1f}  chi2_amp {r['chi2_amp']:.1f}  "
                 f"skipped bins {r['skipped_bins']:.0f}  zero-amplitude images real {r['n_invalid_real']:.0f} / "
                 f"generated {r['n_invalid_fake']:.0f}", "largest terms (statistic / profile variable):"]
        total = max(r["chi2_amp"], 1e-12)
        lines += [f"  {name:34s} {value:10.1f}  ({value / total:5.1%} of chi2_amp)" for name, value in terms[:8]]
        lines.append(self.window_counts())
        return "\n".join(lines)
