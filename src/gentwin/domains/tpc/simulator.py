"""The seeded Monte Carlo of MPD TPC pad responses (``simulate_tpc``)."""

from __future__ import annotations

import math

import numpy as np
import torch

from gentwin.domains.tpc.reader import TPCEvents, check_window


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
    (p_lo, p_hi), (t_lo, t_hi) = check_window(pad_window, time_window)
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
