"""Distances between the key-property distributions of real and generated samples.

van Beek 2023 (leaf digital twin) judges generated leaves by how closely the distributions of eight geometric properties
follow those of the data (its Fig. 9 and 13; §5: "similar in location as in variation"). These
metric entries compare each property's marginal distribution with the exact 1-D Wasserstein-1
(scaled by the real std, so properties in different units are comparable) and the two-sample
Kolmogorov-Smirnov statistic, over the samples that post-processed into valid objects, and report
the share of generated samples that did (a failed post-processing counts there, never fatally).
"""

from __future__ import annotations

import math

import numpy as np

from gentwin.metrics.distances import ks_statistic, wasserstein1

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



def property_scores(real: Properties, fake: Properties, cond: Properties | None = None) -> dict[str, float]:
    """Metric entry: ``gentwin.metrics.properties.property_metric`` plus its means over the properties.

    Returns:
        ``{p}_w1`` (W1 / real std), ``{p}_ks``, ``valid_rate`` and ``mean_w1``, ``mean_ks``: the
        means over the properties with a value (NaN when none has one, e.g. no valid sample).
    """
    out = property_metric(real, fake, cond)
    for stat in ("w1", "ks"):
        values = [v for k, v in out.items() if k.endswith(f"_{stat}") and math.isfinite(v)]
        out[f"mean_{stat}"] = float(np.mean(values)) if values else float("nan")
    return out


def property_table(real: Properties, fake: Properties, title: str = "") -> str:
    """Text table per property: data and generated mean ± std, W1 / data std, KS; the valid share."""
    scores = property_metric(real, fake)
    ok_r = np.asarray(real["valid"]) == 1 if "valid" in real else slice(None)
    ok_f = np.asarray(fake["valid"]) == 1 if "valid" in fake else slice(None)
    lines = [title] if title else []
    lines.append(f"{'property':<16}{'data mean ± std':>24}{'generated mean ± std':>26}{'W1/std':>9}{'KS':>7}")
    for p in real:
        if p == "valid":
            continue
        a, b = np.asarray(real[p], float)[ok_r], np.asarray(fake[p], float)[ok_f]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        ra = f"{a.mean():.4g} ± {a.std():.3g}" if a.size else "-"
        fb = f"{b.mean():.4g} ± {b.std():.3g}" if b.size else "-"
        lines.append(f"{p:<16}{ra:>24}{fb:>26}{scores[f'{p}_w1']:>9.3f}{scores[f'{p}_ks']:>7.3f}")
    n_fake = len(next(iter(fake.values()))) if fake else 0
    if "valid" in fake:
        lines.append(f"valid: {100 * scores['valid_rate']:.1f} % of {n_fake} generated samples post-processed")
    return "\n".join(lines)
