"""Every metric beside its floor: the same metric between two disjoint halves of the reference.

:func:`scorecard` splits the reference at random into halves ``A`` and ``B`` and takes as many
generated samples as ``B`` has. A metric's ``value`` compares ``A`` with the generated sample, its
``floor`` compares ``A`` with ``B``: the same sizes, the same reference half, so a value near its
floor means the generated sample is as close to the reference as a second sample of the reference
itself, and only a value clearly above its floor measures a difference.

The metrics (:func:`compare`): per-feature separation power (CaloChallenge) and W1 in units of the
reference half's std, with their means; JetNet's FPD and KPD of the features
(:func:`gentwin.metrics.physics_distances.fpd_kpd`); the classifier test
(:func:`gentwin.metrics.classifier.classifier_test`) on the raw values and, when the features are not
the raw values, on the features. The same functions as the metric groups of a run, so a metric of one
name has one definition.
With conditions, separation power and W1 are also reported per bin of each condition.
"""

from __future__ import annotations

import numpy as np

from gentwin.metrics.challenge import separation_powers
from gentwin.metrics.classifier import classifier_test
from gentwin.metrics.distances import w1_marginals
from gentwin.metrics.moments import Properties, stack_properties
from gentwin.metrics.physics_distances import RECOMMENDED_SAMPLES, fpd_kpd

MIN_BIN_ROWS = 20


def split_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of two disjoint random halves ``A`` (``n // 2`` rows) and ``B`` (the rest) of ``n`` rows."""
    perm = np.random.default_rng(seed).permutation(n)
    return perm[: n // 2], perm[n // 2 :]


def _mean(values: dict[str, float]) -> float:
    finite = [v for v in values.values() if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def marginal_scores(a: Properties, b: Properties, log_bins=False) -> dict[str, float]:
    """``separation/<f>``, ``separation/mean``, ``w1/<f>`` (W1 / std of ``a``) and ``w1/mean``;
    ``log_bins`` as :func:`gentwin.metrics.challenge.separation_powers`."""
    out = {f"separation/{k}": v for k, v in separation_powers(a, b, log_bins=log_bins).items()}
    w1 = w1_marginals(a, b, scale="std")
    out.update({f"w1/{k}": v for k, v in w1.items()})
    out["w1/mean"] = _mean(w1)
    return out


def compare(a: Properties, b: Properties, a_raw: np.ndarray, b_raw: np.ndarray, seed: int = 0,
            classify_features: bool = True, log_bins=False) -> dict[str, float]:
    """All metrics of ``a`` against ``b`` (features ``a``, ``b``; raw samples ``a_raw``, ``b_raw``)."""
    out = marginal_scores(a, b, log_bins)
    out.update(fpd_kpd(a, b, seed=seed + 42))
    raw = classifier_test(a_raw, b_raw, seed=seed)
    out.update({"classifier/raw_auc": raw["auc"], "classifier/raw_jsd": raw["jsd"]})
    if classify_features:
        feat = classifier_test(stack_properties(a), stack_properties(b, list(a)), seed=seed)
        out.update({"classifier/features_auc": feat["auc"], "classifier/features_jsd": feat["jsd"]})
    return out


def _rows(props: Properties, keep: np.ndarray) -> Properties:
    return {k: np.asarray(v)[keep] for k, v in props.items()}


def scorecard(ref: Properties, ref_raw: np.ndarray, gen: Properties, gen_raw: np.ndarray,
              ref_cond: Properties | None = None, gen_cond: Properties | None = None, seed: int = 0,
              classify_features: bool = True, n_bins: int = 3, halves: tuple | None = None,
              log_bins=False) -> tuple[dict[str, dict[str, float]], list[str]]:
    """``{metric: {"value", "floor"}}`` and notes (JetNet's sample-size advice).

    Args:
        ref, gen: features (name -> (N,)) of the reference and the generated sample.
        ref_raw, gen_raw: the samples themselves, ``(N, *S)``.
        ref_cond, gen_cond: named conditions of each row, or ``None``.
        seed: seed of the split, the subsample and the metrics.
        classify_features: also run the classifier on the features (when they are not the raw values).
        n_bins: bins per condition (quantiles of the reference half ``A``).
        halves: ``(A, B)`` row indices of the reference; default a random split in two. The generated
            sample's first ``len(B)`` rows are used (pass it shuffled, or generated for ``B``'s conditions).
        log_bins: the separation power's binning (:func:`gentwin.metrics.challenge.separation_powers`).
    """
    n = len(ref_raw)
    if halves is None:
        halves = split_halves(n, seed)
    ia, ib = halves
    if len(gen_raw) < len(ib):
        raise ValueError(f"{len(gen_raw)} generated samples; the comparison with its floor needs {len(ib)} "
                         f"(half the reference)")
    ig = np.arange(len(ib))
    a, b, g = _rows(ref, ia), _rows(ref, ib), _rows(gen, ig)
    value = compare(a, g, ref_raw[ia], gen_raw[ig], seed, classify_features, log_bins)
    floor = compare(a, b, ref_raw[ia], ref_raw[ib], seed, classify_features, log_bins)
    card = {k: {"value": value[k], "floor": floor[k]} for k in value}
    if ref_cond and gen_cond:
        for name in ref_cond:
            ca, cb, cg = (np.asarray(c[name])[i] for c, i in ((ref_cond, ia), (ref_cond, ib), (gen_cond, ig)))
            edges = np.unique(np.quantile(ca, np.linspace(0, 1, n_bins + 1)))
            for lo, hi in zip(edges[:-1], edges[1:], strict=True):
                last = hi == edges[-1]
                inside = [(c >= lo) & ((c <= hi) if last else (c < hi)) for c in (ca, cb, cg)]
                if min(m.sum() for m in inside) < MIN_BIN_ROWS:
                    continue
                va = marginal_scores(_rows(a, inside[0]), _rows(g, inside[2]), log_bins)
                fl = marginal_scores(_rows(a, inside[0]), _rows(b, inside[1]), log_bins)
                for stat in ("separation/mean", "w1/mean"):
                    card[f"by_{name}/[{lo:.4g},{hi:.4g}{']' if last else ')'}/{stat}"] = {"value": va[stat],
                                                                                        "floor": fl[stat]}
    notes = []
    if len(ig) < RECOMMENDED_SAMPLES:
        notes.append(f"FPD, KPD: {len(ig):,} samples; JetNet recommends at least {RECOMMENDED_SAMPLES:,} for a "
                     f"comparable value")
    return card, notes
