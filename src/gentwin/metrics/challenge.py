"""The field's evaluation conventions: CaloChallenge's separation power and classifier, JetNet's FPD/KPD.

* Separation power (CaloChallenge, Krause et al., arXiv:2410.21611):
  ``S = 1/2 sum_i (h1_i - h2_i)^2 / (h1_i + h2_i)`` over shared bins of the normalised histograms;
  0 for identical histograms, 1 for disjoint ones.
* FPD and KPD (JetNet, Kansal et al., Phys. Rev. D 107 (2023) 076017): features divided by the real
  sample's max |x|; FPD measured on resamples of sizes regular in 1/N and extrapolated linearly to
  1/N = 0; KPD the median over batches of the unbiased quartic-kernel MMD^2, with half the
  16.5-83.5 % interquantile range as its error. Both warn below 50,000 samples, as JetNet does.
* The classifier test with one fixed recipe, CaloChallenge's scaled to a CPU (:func:`classifier_test`).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from gentwin.metrics.classifier import roc_auc
from gentwin.metrics.moments import Properties, stack_properties
from gentwin.metrics.physics_distances import frechet_from_samples, mmd2_unbiased

RECOMMENDED_SAMPLES = 50_000


def separation_power(a: np.ndarray, b: np.ndarray, bins: int = 50) -> float:
    """CaloChallenge's separation power of two 1-D samples on shared bins.

    The bins span the first (reference) sample's range in ``bins`` equal widths; values of either
    sample outside it are counted in the edge bins, so a generated tail beyond the reference still
    counts. Histograms are normalised to unit sum.

    Returns:
        ``1/2 sum (h1 - h2)^2 / (h1 + h2)`` over bins where ``h1 + h2 > 0``, in [0, 1]; NaN if a sample is
        empty after dropping non-finite values.
    """
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    lo, hi = a.min(), a.max()
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    h1 = np.histogram(np.clip(a, lo, hi), edges)[0] / a.size
    h2 = np.histogram(np.clip(b, lo, hi), edges)[0] / b.size
    total = h1 + h2
    used = total > 0
    return float(0.5 * np.sum((h1[used] - h2[used]) ** 2 / total[used]))


def separation_powers(real: Properties, fake: Properties, cond: Properties | None = None,
                      bins: int = 50) -> dict[str, float]:
    """Metric entry: :func:`separation_power` of every property and their ``mean``."""
    out = {p: separation_power(real[p], fake[p], bins) for p in real}
    finite = [v for v in out.values() if np.isfinite(v)]
    out["mean"] = float(np.mean(finite)) if finite else float("nan")
    return out


def _normalised(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples divided by the real sample's max |x| per feature (JetNet; 0 -> 1)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    return x / scale, y / scale


def _warn_small(n_real: int, n_fake: int, what: str) -> None:
    if min(n_real, n_fake) < RECOMMENDED_SAMPLES:
        warnings.warn(f"{what}: {min(n_real, n_fake):,} samples; JetNet recommends at least "
                      f"{RECOMMENDED_SAMPLES:,} for a comparable value", RuntimeWarning, stacklevel=3)


def fpd_extrapolated(x: np.ndarray, y: np.ndarray, min_samples: int = 20_000, max_samples: int = 50_000,
                     num_batches: int = 20, num_points: int = 10, seed: int = 42) -> tuple[float, float]:
    """JetNet's FPD: the Frechet distance extrapolated to infinitely many samples, and its error.

    For ``num_points`` resample sizes regular in 1/N between ``min_samples`` and ``max_samples``
    (both capped by the smaller sample, the smallest at 40 % of the largest, as JetNet's defaults),
    the mean over ``num_batches`` resamples (with replacement) of :func:`frechet_from_samples`; a
    line ``a + b / N`` with ``a, b >= 0`` is fitted and ``a`` returned with its standard error.
    """
    from scipy.optimize import OptimizeWarning, curve_fit

    _warn_small(len(x), len(y), "FPD")
    x, y = _normalised(x, y)
    top = min(max_samples, len(x), len(y))
    bottom = max(2, min(min_samples, int(0.4 * top)))
    sizes = (1 / np.linspace(1 / bottom, 1 / top, num_points)).astype(int)
    rng = np.random.default_rng(seed)
    means = [np.mean([frechet_from_samples(x[rng.integers(0, len(x), k)], y[rng.integers(0, len(y), k)])
                      for _ in range(num_batches)]) for k in sizes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)  # a flat line has no covariance: error NaN
        params, cov = curve_fit(lambda t, a, b: a + b * t, 1 / sizes, means, bounds=([0, 0], [np.inf, np.inf]))
    return float(params[0]), float(np.sqrt(cov[0, 0]))


def kpd_median(x: np.ndarray, y: np.ndarray, num_batches: int = 10, batch_size: int = 5_000,
               seed: int = 42) -> tuple[float, float]:
    """JetNet's KPD: median over batches of the unbiased MMD^2 with the kernel ``(x.y / d + 1)^4``, and
    half its 16.5-83.5 % interquantile range; batches of ``batch_size`` (capped by the smaller sample)
    drawn with replacement."""
    _warn_small(len(x), len(y), "KPD")
    x, y = _normalised(x, y)
    k = min(batch_size, len(x), len(y))
    values = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + 1000 * i)
        values.append(mmd2_unbiased(x[rng.integers(0, len(x), k)], y[rng.integers(0, len(y), k)], degree=4))
    lo, hi = np.percentile(values, [16.5, 83.5])
    return float(np.median(values)), float((hi - lo) / 2)


def jetnet_distances(real: Properties, fake: Properties, cond: Properties | None = None,
                     seed: int = 42) -> dict[str, float]:
    """Metric entry: ``fpd``, ``fpd_err`` (:func:`fpd_extrapolated`), ``kpd``, ``kpd_err`` (:func:`kpd_median`)."""
    x, y = stack_properties(real), stack_properties(fake, list(real))
    fpd, fpd_err = fpd_extrapolated(x, y, seed=seed)
    kpd, kpd_err = kpd_median(x, y, seed=seed)
    return {"fpd": fpd, "fpd_err": fpd_err, "kpd": kpd, "kpd_err": kpd_err}


def isotonic_calibration(scores: np.ndarray, labels: np.ndarray):
    """Isotonic regression of ``labels`` (0/1) on ``scores`` (pool adjacent violators), as a function
    mapping new scores to calibrated probabilities (linear between the fitted points, flat outside)."""
    order = np.argsort(scores, kind="mergesort")
    s, y = np.asarray(scores, np.float64)[order], np.asarray(labels, np.float64)[order]
    values, weights = [], []
    for v in y:
        values.append(v)
        weights.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            w = weights[-2] + weights[-1]
            values[-2:] = [(values[-2] * weights[-2] + values[-1] * weights[-1]) / w]
            weights[-2:] = [w]
    fitted = np.repeat(values, weights)
    return lambda t: np.interp(t, s, fitted)


def classifier_test(x: np.ndarray, y: np.ndarray, seed: int = 0, max_samples: int = 10_000, hidden: int = 128,
                    batch_size: int = 256, lr: float = 1e-3, max_epochs: int = 50, patience: int = 5
                    ) -> dict[str, float]:
    """The classifier two-sample test with one fixed recipe: CaloChallenge's, scaled to a CPU.

    CaloChallenge (Krause et al., arXiv:2410.21611) trains a network of 2 hidden layers of 512 units
    (LeakyReLU) for 50 epochs (Adam, lr 2e-4, batch 1000) on a 60/20/20 train/validation/test split,
    keeps the epoch best on the validation set, calibrates the output by isotonic regression on the
    validation set and reports the test AUC and JSD. Here, the same with 2 x ``hidden`` = 128 units,
    Adam lr 1e-3, batch 256, at most ``max_epochs`` = 50 epochs with early stopping after ``patience``
    = 5 epochs without a lower validation loss (the best epoch's weights kept), on at most
    ``max_samples`` rows of each sample, equally many of each (the larger one subsampled), features
    standardized by the training split. Deterministic for a ``seed`` and a thread count; the global
    torch RNG is left as it was.

    Returns:
        ``auc``: the test ROC AUC of the calibrated output (0.5: indistinguishable, 1: separated);
        ``jsd``: ``(log 2 - BCE) / log 2`` of the calibrated test output, the Jensen-Shannon
        divergence in bits that the classifier reveals (0: none, 1: separated); NaN for non-finite inputs.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x, y = x.reshape(len(x), -1), y.reshape(len(y), -1)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return {"auc": float("nan"), "jsd": float("nan")}
    rng = np.random.default_rng(seed)
    n = min(len(x), len(y), max_samples)
    if n < 10:
        raise ValueError(f"the classifier test needs at least 10 samples on each side, got {n}")
    data = np.concatenate([x[rng.permutation(len(x))[:n]], y[rng.permutation(len(y))[:n]]])
    labels = np.concatenate([np.ones(n), np.zeros(n)])
    order = rng.permutation(2 * n)
    data, labels = data[order], labels[order]
    a, b = int(0.6 * 2 * n), int(0.8 * 2 * n)
    mean, std = data[:a].mean(0), data[:a].std(0)
    std[std == 0] = 1.0
    t = torch.as_tensor((data - mean) / std, dtype=torch.float32)
    lab = torch.as_tensor(labels, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(t.shape[1], hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                            nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        loss_fn = nn.BCEWithLogitsLoss()
        best, best_state, waited = float("inf"), None, 0
        for _ in range(max_epochs):
            for idx in torch.randperm(a).split(batch_size):
                opt.zero_grad()
                loss_fn(net(t[idx]).squeeze(-1), lab[idx]).backward()
                opt.step()
            with torch.no_grad():
                val = float(loss_fn(net(t[a:b]).squeeze(-1), lab[a:b]))
            if val < best:
                best, best_state, waited = val, {k: v.clone() for k, v in net.state_dict().items()}, 0
            else:
                waited += 1
                if waited >= patience:
                    break
        net.load_state_dict(best_state)
        with torch.no_grad():
            scores = net(t).squeeze(-1).double().numpy()
    calibrate = isotonic_calibration(scores[a:b], labels[a:b])
    p, truth = np.clip(calibrate(scores[b:]), 1e-7, 1 - 1e-7), labels[b:]
    bce = -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    return {"auc": roc_auc(p[truth == 1], p[truth == 0]), "jsd": float((np.log(2) - bce) / np.log(2))}

