"""The classifier two-sample test, one recipe for every caller: CaloChallenge's, scaled to a CPU.

The metric groups' ``classifier`` entry (``classifier/auc`` and ``classifier/jsd`` in ``metrics.json``,
at the final evaluation only: ``metric.final_only``) and ``evaluate``'s scorecard
(``classifier/raw_auc``, ``classifier/features_auc``) all call :func:`classifier_test`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gentwin.metrics.distances import as_1d
from gentwin.metrics.moments import Properties, stack_properties
from gentwin.progress import job


def _midranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def roc_auc(scores_pos: np.ndarray, scores_neg: np.ndarray) -> float:
    """Exact ROC AUC from the Mann-Whitney U statistic, ties counted one half.

    ``AUC = P(s_pos > s_neg) + P(s_pos = s_neg) / 2 = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``
    with R_pos the sum of the mid-ranks of the positives in the pooled scores.

    Args:
        scores_pos: scores of the positive class, shape (P,).
        scores_neg: scores of the negative class, shape (Q,).

    Returns:
        The AUC in [0, 1]; 0.5 when the scores do not separate the classes.

    References:
        D. J. Hand and R. J. Till, Mach. Learn. 45 (2001) 171.
    """
    pos, neg = as_1d(scores_pos), as_1d(scores_neg)
    ranks = _midranks(np.concatenate([pos, neg]))
    n_pos, n_neg = pos.size, neg.size
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


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
                    batch_size: int = 256, lr: float = 1e-3, max_epochs: int = 50, patience: int = 5,
                    progress=None) -> dict[str, float]:
    """The classifier two-sample test: the held-out ROC AUC and JSD of a network telling ``x`` from ``y``.

    The recipe is CaloChallenge's (Krause et al., arXiv:2410.21611: 2 hidden layers of 512 units,
    LeakyReLU, 50 epochs of Adam at lr 2e-4 and batch 1000, a 60/20/20 train/validation/test split,
    the epoch best on the validation set kept, the output calibrated by isotonic regression on the
    validation set, AUC and JSD on the test set), scaled to a CPU: 2 x ``hidden`` = 128 units, Adam
    lr 1e-3, batch 256, at most ``max_epochs`` = 50 epochs with early stopping after ``patience`` = 5
    epochs without a lower validation loss (the best epoch's weights kept), on at most ``max_samples``
    rows of each sample, equally many of each (the larger one subsampled), features standardized by
    the training split. It is the one recipe because it is the field's: a held-out split that chooses
    the epoch and calibrates, a test split that only scores, so the AUC neither rewards overfitting
    nor depends on a fixed epoch count the way full-batch training for a set number of steps does.
    Cost on one thread: 5,000 x 16 against 5,000 x 16 takes 0.35 s when the samples agree (early
    stopping) and 3.5-5.3 s when they differ (up to 50 epochs); metric groups therefore run it only
    at the final evaluation (``metric.final_only``), not at each validation.

    Deterministic for a ``seed`` and a thread count; the global torch RNG is left as it was, and it
    trains under Lightning's validation (inference mode) too.

    Args:
        x: real sample, shape (N, *S), N >= 10.
        y: generated sample, shape (M, *S), M >= 10.
        seed: seed of the subsample, the split and the network.
        progress: told ``(fraction, detail)`` after each epoch, the fraction of ``max_epochs`` (1 at the
            end, early or not): a ``gentwin.progress.Lines`` (its ``update``) or any callable. Default:
            ``gentwin.progress.job("classifier")``, lines only inside a command's ``progress.shown()``.

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
    if progress is None:
        progress = job("classifier")
    report = getattr(progress, "update", progress)  # a Lines, or any callable (fraction, detail)
    lab = torch.as_tensor(labels, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Linear(t.shape[1], hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                            nn.LeakyReLU(0.2), nn.Linear(hidden, 1))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        loss_fn = nn.BCEWithLogitsLoss()
        best, best_state, waited = float("inf"), None, 0
        for epoch in range(1, max_epochs + 1):
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
            stop = waited >= patience
            if report:
                report(1.0 if stop else epoch / max_epochs,
                       f"epoch {epoch}/{max_epochs}{' (stopped early)' if stop else ''}  val loss {val:.4g}")
            if stop:
                break
        net.load_state_dict(best_state)
        with torch.no_grad():
            scores = net(t).squeeze(-1).double().numpy()
    calibrate = isotonic_calibration(scores[a:b], labels[a:b])
    p, truth = np.clip(calibrate(scores[b:]), 1e-7, 1 - 1e-7), labels[b:]
    bce = -np.mean(truth * np.log(p) + (1 - truth) * np.log(1 - p))
    return {"auc": roc_auc(p[truth == 1], p[truth == 0]), "jsd": float((np.log(2) - bce) / np.log(2))}


def classifier(real: Properties, fake: Properties, cond: Properties | None = None, seed: int = 0) -> dict[str, float]:
    """Metric entry: :func:`classifier_test` on the stacked properties: ``{"auc", "jsd"}``."""
    keys = list(real)
    return classifier_test(stack_properties(real, keys), stack_properties(fake, keys), seed=seed)
