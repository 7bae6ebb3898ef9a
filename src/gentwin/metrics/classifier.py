"""A classifier two-sample test: the ROC AUC of a small network telling real from generated."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gentwin.metrics.distances import as_1d, as_2d
from gentwin.metrics.moments import Properties, stack_properties


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


def classifier_auc(
    x: np.ndarray,
    y: np.ndarray,
    seed: int = 0,
    epochs: int = 100,
    hidden: int = 32,
    lr: float = 1e-2,
    max_samples: int = 5000,
) -> float:
    """Classifier two-sample test: held-out ROC AUC of an MLP separating real from generated.

    Each sample is subsampled to at most ``max_samples``, shuffled and split in half; an MLP
    (D -> hidden -> hidden -> 1, ReLU) is trained on the first halves (real label 1, generated
    label 0, classes weighted equally) with full-batch Adam for ``epochs`` steps, on features
    standardized by the training halves' pooled mean and std; the AUC is taken on the second halves.
    0.5 means indistinguishable, 1 fully separated. Runs under ``torch.random.fork_rng``, so the
    global torch RNG is left as it was; the thread count is the caller's (``torch.set_num_threads``).

    Args:
        x: real sample, shape (N,) or (N, D), N >= 2.
        y: generated sample, shape (M,) or (M, D), M >= 2.
        seed: seed of the split and of the network initialisation.
        epochs: number of full-batch Adam steps.
        hidden: width of the two hidden layers.
        lr: Adam learning rate.
        max_samples: cap on the points used per sample (bounds the cost at validation time).

    Returns:
        The held-out AUC (``roc_auc``); NaN if any input is not finite.

    References:
        D. Lopez-Paz and M. Oquab, ICLR 2017; C. Krause et al., arXiv:2410.21611 (CaloChallenge
        evaluation).
    """
    # Callers may run under inference mode (Lightning's validation): the classifier must train.
    with torch.inference_mode(False), torch.enable_grad():
        return _classifier_auc(x, y, seed, epochs, hidden, lr, max_samples)


def _classifier_auc(x, y, seed, epochs, hidden, lr, max_samples) -> float:
    x, y = as_2d(x), as_2d(y)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        return float("nan")
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("classifier_auc needs at least 2 samples on each side")
    rng = np.random.default_rng(seed)
    x = x[rng.permutation(x.shape[0])[:max_samples]]
    y = y[rng.permutation(y.shape[0])[:max_samples]]
    (x_tr, x_te), (y_tr, y_te) = np.array_split(x, 2), np.array_split(y, 2)
    train = np.concatenate([x_tr, y_tr])
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    as_tensor = lambda a: torch.as_tensor((a - mean) / std, dtype=torch.float32)
    labels = torch.cat([torch.ones(len(x_tr)), torch.zeros(len(y_tr))])
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(len(y_tr) / len(x_tr)))
    # Callers may run under inference mode (Lightning's validation): the classifier must train.
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False), torch.enable_grad():
        torch.manual_seed(seed)
        d = x.shape[1]
        net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        inputs = as_tensor(train)
        for _ in range(epochs):
            opt.zero_grad()
            loss_fn(net(inputs).squeeze(-1), labels).backward()
            opt.step()
        with torch.no_grad():
            s_pos = net(as_tensor(x_te)).squeeze(-1).numpy()
            s_neg = net(as_tensor(y_te)).squeeze(-1).numpy()
    return roc_auc(s_pos, s_neg)




def classifier(
    real: Properties,
    fake: Properties,
    cond: Properties | None = None,
    seed: int = 0,
    epochs: int = 100,
    hidden: int = 32,
) -> dict[str, float]:
    """Metric entry: ``classifier_auc`` on the stacked properties.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        seed: seed of the split and the network.
        epochs: full-batch Adam steps.
        hidden: hidden width.

    Returns:
        ``{"auc": held-out ROC AUC}``.
    """
    keys = list(real)
    x, y = stack_properties(real, keys), stack_properties(fake, keys)
    return {"auc": classifier_auc(x, y, seed=seed, epochs=epochs, hidden=hidden)}
