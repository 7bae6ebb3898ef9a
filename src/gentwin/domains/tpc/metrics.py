"""Profile chi-square of TPC responses (the baseline's public evaluation).

Reference: A. Maevskiy et al., Eur. Phys. J. C 81, 599 (2021) and its code TPC-FastSim
(``metrics/trends.py``: ``make_trend_plot(..., calc_chi2=True)``); Malchenko et al. 2022 (TPC fast simulation),
section 3.3.

For every profile variable v (a condition) and statistic y (an image property), the range of v over
real and generated events together is cut into ``n_bins`` equal bins. In each bin, for real and for
generated events: mean m, population std s, error of the mean s / sqrt(n - 1), error of s as the std
of s over ``n_bootstrap`` resamples; the bands u = m + s and l = m - s get the error
eps^2 = eps_m^2 + eps_s^2, and

    chi2 = sum over y, v, bins of [(u_g - u_r)^2 + (l_g - l_r)^2] / (eps_g^2 + eps_r^2).

The baseline sums the five moments (not the integrated amplitude, so a global gain error scores 0);
``chi2_amp`` adds the integrated amplitude ``Sum`` as a sixth statistic.

Deviations from TPC-FastSim, all at the level of single events: a value equal to the upper edge
falls into the last bin (TPC-FastSim's bin search puts it into the first one); bins where real or
generated events number fewer than two, or where both errors vanish, are skipped and counted
(TPC-FastSim returns NaN); images of zero total amplitude (NaN moments) are excluded from the moment
statistics and counted; the bootstrap is seeded.
"""

from __future__ import annotations

import numpy as np

#: Profile variables of the baseline (``make_images_for_model``), in the names of
#: :meth:`gentwin.domains.tpc.reader.TPCEvents.profile_variables`.
PROFILE_VARIABLES = ("crossing_angle", "dip_angle", "drift_length", "drift_length_frac", "pad_coordinate_frac")
#: The statistics summed in ``chi2``; ``chi2_amp`` adds ``Sum``.
CHI2_STATISTICS = ("Mean0", "Mean1", "Sigma0^2", "Sigma1^2", "Cov01")


def _bin_stats(values: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Mean, std, their errors for the columns of values (n, S); NaN entries are left out per column."""
    n_stat = values.shape[1]
    out = {k: np.full(n_stat, np.nan) for k in ("mean", "std", "mean_err", "std_err")}
    out["n"] = np.zeros(n_stat, dtype=np.int64)
    ok = ~np.isnan(values)
    # Columns sharing the same set of valid rows share one bootstrap draw.
    patterns = {}
    for k in range(n_stat):
        patterns.setdefault(ok[:, k].tobytes(), []).append(k)
    for cols in patterns.values():
        v = values[ok[:, cols[0]]][:, cols]
        n = len(v)
        out["n"][cols] = n
        if n < 2:
            continue
        std = v.std(axis=0)
        out["mean"][cols] = v.mean(axis=0)
        out["std"][cols] = std
        out["mean_err"][cols] = std / np.sqrt(n - 1)
        idx = rng.integers(0, n, size=(n_bootstrap, n))
        out["std_err"][cols] = v[idx].std(axis=1).std(axis=0)
    return out


def tpc_profiles(
    real: dict[str, np.ndarray],
    fake: dict[str, np.ndarray],
    cond: dict[str, np.ndarray],
    cond_fake: dict[str, np.ndarray] | None = None,
    variables=PROFILE_VARIABLES,
    statistics=CHI2_STATISTICS + ("Sum",),
    n_bins: int = 19,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Binned profiles of image statistics against condition variables, for real and generated events.

    Args:
        real: :func:`gentwin.domains.tpc.properties.tpc_properties` of the real images, each (N_r,).
        fake: the same for the generated images, each (N_g,).
        cond: profile variables of the real events, name -> (N_r,) (e.g.
            :meth:`~gentwin.domains.tpc.reader.TPCEvents.profile_variables`).
        cond_fake: profile variables of the generated events, name -> (N_g,); default ``cond``
            (generated for the same conditions, N_g = N_r).
        variables: the profile variables.
        statistics: the statistics (keys of ``real`` and ``fake``).
        n_bins: equal-width bins between the joint min and max of each variable.
        n_bootstrap: resamples for the error of the std.
        seed: seed of the bootstrap.

    Returns:
        ``profiles[variable][statistic]`` = dict of arrays over bins: ``edges`` (n_bins + 1,),
        ``centers``, and for ``real_`` and ``fake_``: ``mean``, ``std``, ``mean_err``, ``std_err``
        (NaN where fewer than two events) and ``n`` (events in the bin with a finite statistic).
    """
    cond_fake = cond if cond_fake is None else cond_fake
    rng = np.random.default_rng(seed)
    y_real = np.stack([np.asarray(real[s], dtype=np.float64) for s in statistics], axis=1)
    y_fake = np.stack([np.asarray(fake[s], dtype=np.float64) for s in statistics], axis=1)
    profiles: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    for var in variables:
        x_real = np.asarray(cond[var], dtype=np.float64)
        x_fake = np.asarray(cond_fake[var], dtype=np.float64)
        if x_real.shape != (len(y_real),) or x_fake.shape != (len(y_fake),):
            raise ValueError(
                f"{var}: {x_real.shape} real and {x_fake.shape} generated values for "
                f"{len(y_real)} real and {len(y_fake)} generated events"
            )
        if not (np.isfinite(x_real).all() and np.isfinite(x_fake).all()):
            raise ValueError(f"{var}: non-finite condition values")
        both = np.concatenate([x_real, x_fake])
        edges = np.linspace(both.min(), both.max(), n_bins + 1)
        per_sample = {}
        for tag, x, y in (("real", x_real, y_real), ("fake", x_fake, y_fake)):
            which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
            stats = [_bin_stats(y[which == k], n_bootstrap, rng) for k in range(n_bins)]
            per_sample[tag] = {key: np.stack([st[key] for st in stats]) for key in stats[0]}  # (n_bins, S)
        profiles[var] = {}
        for j, stat in enumerate(statistics):
            entry = {"edges": edges, "centers": 0.5 * (edges[1:] + edges[:-1])}
            for tag, st in per_sample.items():
                for key, arr in st.items():
                    entry[f"{tag}_{key}"] = arr[:, j]
            profiles[var][stat] = entry
    return profiles


def profile_chi2_term(p: dict[str, np.ndarray]) -> tuple[float, int]:
    """One (statistic, variable) term of the profile chi2 and the number of its bins left out.

    Args:
        p: one profile of :func:`tpc_profiles` (``profiles[variable][statistic]``), arrays over bins.

    Returns:
        ``(term, skipped)``: the sum over bins of [(u_g - u_r)^2 + (l_g - l_r)^2] / (eps_g^2 + eps_r^2)
        with the bands u = mean + std and l = mean - std, and the bins left out because real or
        generated had fewer than two events or both errors were zero.
    """
    err2 = p["real_mean_err"] ** 2 + p["real_std_err"] ** 2 + p["fake_mean_err"] ** 2 + p["fake_std_err"] ** 2
    use = (p["real_n"] >= 2) & (p["fake_n"] >= 2)
    use[use] = err2[use] > 0
    d_upper = (p["fake_mean"] + p["fake_std"]) - (p["real_mean"] + p["real_std"])
    d_lower = (p["fake_mean"] - p["fake_std"]) - (p["real_mean"] - p["real_std"])
    return float(np.sum((d_upper[use] ** 2 + d_lower[use] ** 2) / err2[use])), int((~use).sum())


def tpc_chi2(
    real: dict[str, np.ndarray],
    fake: dict[str, np.ndarray],
    cond: dict[str, np.ndarray],
    variables=PROFILE_VARIABLES,
    n_bins: int = 19,
    n_bootstrap: int = 100,
    seed: int = 0,
    cond_fake: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Profile chi-square of the baseline (TPC-FastSim; Malchenko et al. 2022 section 3.3), with a breakdown.

    Args:
        real: :func:`gentwin.domains.tpc.properties.tpc_properties` of the real images, each (N_r,).
        fake: the same for images generated for the same conditions, each (N_g,).
        cond: profile variables, name -> (N_r,).
        variables: the profile variables.
        n_bins: equal-width bins between the joint min and max of each variable (19: TPC-FastSim's
            ``np.linspace(min, max, 20)``).
        n_bootstrap: resamples for the error of the std.
        seed: seed of the bootstrap.
        cond_fake: profile variables of the generated events if they differ from ``cond`` (e.g. the
            real-vs-real floor); default ``cond``.

    Returns:
        ``chi2`` (the baseline's sum over the five moments), ``chi2_amp`` (the same plus ``Sum``),
        ``skipped_bins`` / ``skipped_bins_amp`` (terms, i.e. (statistic, variable, bin), left out of
        ``chi2`` / ``chi2_amp`` because real or generated had fewer than two events or both errors
        were zero), ``n_invalid_real`` / ``n_invalid_fake`` (images with NaN moments, i.e. zero
        total amplitude, left out of the moment statistics), and ``term/<statistic>/<variable>`` (logged
        as ``val/chi2/term/...``).
    """
    statistics = CHI2_STATISTICS + ("Sum",)
    profiles = tpc_profiles(real, fake, cond, cond_fake, variables, statistics, n_bins, n_bootstrap, seed)
    out: dict[str, float] = {}
    total = {s: 0.0 for s in statistics}
    skipped = {s: 0 for s in statistics}
    for var, per_stat in profiles.items():
        for stat, p in per_stat.items():
            term, n_skipped = profile_chi2_term(p)
            out[f"term/{stat}/{var}"] = term
            total[stat] += term
            skipped[stat] += n_skipped
    out["chi2"] = float(sum(total[s] for s in CHI2_STATISTICS))
    out["chi2_amp"] = out["chi2"] + total["Sum"]
    out["skipped_bins"] = float(sum(skipped[s] for s in CHI2_STATISTICS))
    out["skipped_bins_amp"] = out["skipped_bins"] + skipped["Sum"]
    out["n_invalid_real"] = float(np.isnan(np.asarray(real["Mean0"], dtype=np.float64)).sum())
    out["n_invalid_fake"] = float(np.isnan(np.asarray(fake["Mean0"], dtype=np.float64)).sum())
    return out


def tpc_chi2_halves(
    real: dict[str, np.ndarray],
    fake: dict[str, np.ndarray],
    cond: dict[str, np.ndarray],
    variables=PROFILE_VARIABLES,
    n_bins: int = 19,
    n_bootstrap: int = 100,
    seed: int = 0,
) -> dict[str, float]:
    """Metric entry: the profile chi2 beside its real-vs-real floor, on equal footing.

    :func:`tpc_chi2` compares each held-out event with the event generated for its own conditions, so
    the profiles of both share their condition values; two real samples never do (the floor of
    ``scripts/tpc_floor.py`` compares events of different conditions), and a perfect generator scores
    well below that floor. Here the held-out events are split at random (``seed``) into halves A and B
    (as :func:`gentwin.domains.tpc.sparsity.sparsity_metrics` does): ``chi2`` compares A with the events
    generated for B's conditions, ``chi2_floor`` compares A with B. Same sizes, same conditions on
    either side: a value near its floor is as close to A as a second real sample.

    Returns:
        ``chi2``, ``chi2_floor``, ``chi2_amp`` and ``chi2_amp_floor`` (with the summed amplitude).
    """
    from gentwin.metrics.floors import split_halves

    n = len(np.asarray(real["Mean0"]))
    ia, ib = split_halves(n, seed)
    rows = lambda d, i: {k: np.asarray(v)[i] for k, v in d.items()}  # noqa: E731
    args = dict(variables=variables, n_bins=n_bins, n_bootstrap=n_bootstrap, seed=seed)
    value = tpc_chi2(rows(real, ia), rows(fake, ib), rows(cond, ia), cond_fake=rows(cond, ib), **args)
    floor = tpc_chi2(rows(real, ia), rows(real, ib), rows(cond, ia), cond_fake=rows(cond, ib), **args)
    return {"chi2": value["chi2"], "chi2_floor": floor["chi2"], "chi2_amp": value["chi2_amp"],
            "chi2_amp_floor": floor["chi2_amp"]}
