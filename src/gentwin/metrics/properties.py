"""Distances between the key-property distributions of real and generated samples.

van Beek 2023 (leaf digital twin) judges generated leaves by how closely the distributions of eight geometric properties
follow those of the data (its Fig. 9 and 13; §5: "similar in location as in variation"). These
metric entries compare each property's marginal distribution with the exact 1-D Wasserstein-1
(scaled by the real std, so properties in different units are comparable) and the two-sample
Kolmogorov-Smirnov statistic, over the samples that post-processed into valid objects, and report
the share of generated samples that did (a failed post-processing counts there, never fatally).

Every distance comes with its floor (``<key>_floor``): the same distance between two real samples,
what "as close as real data" means. The floor compares the held-out sample with a second independent
real sample of its size where the domain's simulator can make one (leaves, microstructures:
``floor_reference``), else two random halves of the held-out sample (digits, a user's leaves), which
is taken at half the sample size and so lies about sqrt(2) above the floor at full size.
"""

from __future__ import annotations

import math

import numpy as np

from gentwin.metrics.distances import ks_statistic, wasserstein1
from gentwin.metrics.floors import split_halves

Properties = dict[str, np.ndarray]


def _valid(props: Properties, n: int) -> np.ndarray:
    return np.asarray(props["valid"]) == 1 if "valid" in props else np.ones(n, dtype=bool)


def property_metric(real: Properties, fake: Properties, cond: Properties | None = None) -> dict[str, float]:
    """Per-property W1 / std and KS between real and generated samples, plus the valid rate.

    Only entries with ``valid == 1`` (when a ``valid`` key exists) and a finite value enter a
    property's comparison. The W1 is divided by the std (``ddof=0``) of the real values, or left
    undivided when that std is 0. A property without values on either side gives NaN.

    Args:
        real: property name -> (N,) array of the reference sample, optionally with ``valid``.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.

    Returns:
        ``{f"{p}_w1": ..., f"{p}_ks": ...}`` for every property p of ``real`` except ``valid``, and
        ``valid_rate``: the share of generated samples with ``valid == 1`` (1.0 without ``valid``).
    """
    out = {}
    keys = [k for k in real if k != "valid"]
    n_real, n_fake = len(real[keys[0]]) if keys else 0, len(fake[keys[0]]) if keys else 0
    ok_real, ok_fake = _valid(real, n_real), _valid(fake, n_fake)
    for p in keys:
        a, b = np.asarray(real[p], dtype=np.float64), np.asarray(fake[p], dtype=np.float64)
        a, b = a[ok_real & np.isfinite(a)], b[ok_fake & np.isfinite(b)]
        if a.size == 0 or b.size == 0:
            out[f"{p}_w1"] = out[f"{p}_ks"] = float("nan")
            continue
        std = float(a.std())
        w1 = wasserstein1(a, b)
        out[f"{p}_w1"] = w1 / std if std > 0 else w1
        out[f"{p}_ks"] = ks_statistic(a, b)
    out["valid_rate"] = float(ok_fake.mean()) if n_fake else float("nan")
    return out



def _with_means(out: dict[str, float]) -> dict[str, float]:
    for stat in ("w1", "ks"):
        values = [v for k, v in out.items() if k.endswith(f"_{stat}") and math.isfinite(v)]
        out[f"mean_{stat}"] = float(np.mean(values)) if values else float("nan")
    return out


def property_floor(real: Properties, floor_reference: Properties | None = None, seed: int = 0) -> dict[str, float]:
    """:func:`property_scores` between two real samples: ``real`` against ``floor_reference`` (a
    second independent real sample, ideally of ``real``'s size), or, when it is ``None``, between two
    random halves of ``real`` (split with ``seed``; NaN with fewer than 2 samples)."""
    if floor_reference is not None:
        return _with_means(property_metric(real, floor_reference))
    n = len(next(iter(real.values()))) if real else 0
    ia, ib = split_halves(n, seed)
    half = lambda i: {k: np.asarray(v)[i] for k, v in real.items()}  # noqa: E731
    return _with_means(property_metric(half(ia), half(ib)))


def property_scores(real: Properties, fake: Properties, cond: Properties | None = None,
                    floor_reference: Properties | None = None, seed: int = 0) -> dict[str, float]:
    """Metric entry: ``gentwin.metrics.properties.property_metric`` plus its means over the properties,
    each beside its floor.

    Args:
        real, fake, cond: as :func:`property_metric`.
        floor_reference: a second independent real sample of ``real``'s size (the datamodule's
            ``floor_properties``), or ``None``: the floor then compares two halves of ``real``.
        seed: seed of the split into halves.

    Returns:
        ``{p}_w1`` (W1 / real std), ``{p}_ks``, ``valid_rate`` and ``mean_w1``, ``mean_ks``: the
        means over the properties with a value (NaN when none has one, e.g. no valid sample); and
        for each of them ``<key>_floor`` (:func:`property_floor`; ``valid_rate_floor``: the share of
        the second real sample that is valid).
    """
    out = _with_means(property_metric(real, fake, cond))
    floor = property_floor(real, floor_reference, seed)
    return out | {f"{k}_floor": v for k, v in floor.items()}


#: ``gentwin.evaluate.run_metrics`` passes this entry the datamodule's second real sample.
property_scores.takes_floor_reference = True


def property_table(real: Properties, fake: Properties, title: str = "",
                   floor_reference: Properties | None = None) -> str:
    """Text table per property: data and generated mean ± std, W1 / data std and KS, each beside its
    floor (:func:`property_floor`); the means over the properties; the valid share."""
    scores = property_scores(real, fake, floor_reference=floor_reference)
    ok_r = np.asarray(real["valid"]) == 1 if "valid" in real else slice(None)
    ok_f = np.asarray(fake["valid"]) == 1 if "valid" in fake else slice(None)
    floor = "a second real sample" if floor_reference is not None else "two halves of the held-out data"
    lines = [title] if title else []
    lines.append(f"{'property':<16}{'data mean ± std':>24}{'generated mean ± std':>26}{'W1/std':>9}{'floor':>7}"
                 f"{'KS':>7}{'floor':>7}")
    row = lambda key: (f"{scores[f'{key}_w1']:>9.3f}{scores[f'{key}_w1_floor']:>7.3f}"  # noqa: E731
                       f"{scores[f'{key}_ks']:>7.3f}{scores[f'{key}_ks_floor']:>7.3f}")
    for p in real:
        if p == "valid":
            continue
        a, b = np.asarray(real[p], float)[ok_r], np.asarray(fake[p], float)[ok_f]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        ra = f"{a.mean():.4g} ± {a.std():.3g}" if a.size else "-"
        fb = f"{b.mean():.4g} ± {b.std():.3g}" if b.size else "-"
        lines.append(f"{p:<16}{ra:>24}{fb:>26}" + row(p))
    lines.append(f"{'mean':<66}" + row("mean"))
    lines.append(f"floor: the same distance between the held-out data and {floor}")
    n_fake = len(next(iter(fake.values()))) if fake else 0
    if "valid" in fake:
        lines.append(f"valid: {100 * scores['valid_rate']:.1f} % of {n_fake} generated samples post-processed "
                     f"(real: {100 * scores['valid_rate_floor']:.1f} %)")
    return "\n".join(lines)
