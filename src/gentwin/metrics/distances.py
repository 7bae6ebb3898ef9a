"""Distances between real and generated samples: marginal, multivariate and classifier-based.

1-D: exact Wasserstein-1 and Kolmogorov-Smirnov between empirical distributions. Multivariate:
energy distance, sliced W1, Frechet distance (FPD), kernel distance (KPD) and a classifier
two-sample test. Array functions take (N,) or (N, D) arrays; the metric entries take
``real``/``fake`` property dicts and return flat dicts of floats.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gentwin.metrics.moments import Properties, stack_properties


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(-1, 1) if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N,) or (N, D) array, got shape {x.shape}")
    return x


def _as_1d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("expected a non-empty sample")
    return a


def _ecdfs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled sorted values t (K,) and both empirical CDFs evaluated at t (right-continuous)."""
    a, b = np.sort(_as_1d(a)), np.sort(_as_1d(b))
    t = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, t, side="right") / a.size
    fb = np.searchsorted(b, t, side="right") / b.size
    return t, fa, fb


def wasserstein1(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two 1-D empirical distributions.

    ``W1 = integral |F_a(t) - F_b(t)| dt``, evaluated exactly on the piecewise-constant empirical
    CDFs (no binning); the samples may have different sizes.

    Args:
        a: first sample, shape (N,).
        b: second sample, shape (M,).

    Returns:
        W1 in the units of the data.

    References:
        S. S. Vallender, Theory Probab. Appl. 18 (1974) 784 (W1 as the L1 distance of the CDFs).
    """
    t, fa, fb = _ecdfs(a, b)
    return float(np.sum(np.abs(fa[:-1] - fb[:-1]) * np.diff(t)))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sample Kolmogorov-Smirnov statistic ``sup_t |F_a(t) - F_b(t)|``.

    The supremum of the difference of two step functions is attained at a data point, so it is
    evaluated exactly at the pooled sample (ties handled by the right-continuous CDFs).

    Args:
        a: first sample, shape (N,).
        b: second sample, shape (M,).

    Returns:
        The statistic, in [0, 1]; NaN if any value is not finite.
    """
    t, fa, fb = _ecdfs(a, b)
    if not np.isfinite(t).all():
        return float("nan")
    return float(np.max(np.abs(fa - fb)))


def _mean_distance(x: np.ndarray, y: np.ndarray, chunk: int = 1 << 22) -> float:
    """Mean Euclidean distance over all (N x M) pairs, in row blocks of about ``chunk`` numbers.

    Direct differences rather than the Gram expansion, so the zero distances are exactly zero.
    """
    n, m, d = x.shape[0], y.shape[0], x.shape[1]
    rows = max(1, chunk // (m * d))
    total = 0.0
    for s in range(0, n, rows):
        diff = x[s : s + rows, None, :] - y[None, :, :]
        dist = np.abs(diff[..., 0]) if d == 1 else np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
        total += float(dist.sum())
    return total / (n * m)


def _subsample(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return x if x.shape[0] <= k else x[rng.choice(x.shape[0], size=k, replace=False)]


def energy_distance(x: np.ndarray, y: np.ndarray, max_samples: int = 2000, seed: int = 0) -> float:
    """Squared energy distance ``E = 2 E|X-Y| - E|X-X'| - E|Y-Y'|`` (V-statistic).

    All three expectations are plain means over all pairs, the i = j zero terms included
    (V-statistic), so E >= 0, E = 0 for identical samples, and in 1-D E equals exactly
    ``2 * integral (F_x - F_y)^2 dt`` for the empirical CDFs (Szekely & Rizzo). This is the square
    of what ``scipy.stats.energy_distance`` returns. Samples larger than ``max_samples`` are
    subsampled without replacement, which keeps the cost at O(max_samples^2 D).

    Args:
        x: first sample, shape (N,) or (N, D).
        y: second sample, shape (M,) or (M, D).
        max_samples: subsample each sample to at most this many points.
        seed: seed of the subsampling.

    Returns:
        E in the units of the data.

    References:
        G. J. Szekely and M. L. Rizzo, J. Stat. Plan. Inference 143 (2013) 1249.
    """
    x, y = _as_2d(x), _as_2d(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: {x.shape} vs {y.shape}")
    rng = np.random.default_rng(seed)
    x, y = _subsample(x, max_samples, rng), _subsample(y, max_samples, rng)
    return float(2.0 * _mean_distance(x, y) - _mean_distance(x, x) - _mean_distance(y, y))


def sliced_w1(x: np.ndarray, y: np.ndarray, n_projections: int = 128, seed: int = 0) -> float:
    """Sliced Wasserstein-1: exact 1-D W1 of random projections, averaged over directions.

    Directions are uniform on the unit sphere (normalised standard normals drawn from ``seed``).

    Args:
        x: first sample, shape (N,) or (N, D).
        y: second sample, shape (M,) or (M, D).
        n_projections: number of random directions.
        seed: seed of the directions.

    Returns:
        The mean of ``wasserstein1(x @ theta, y @ theta)`` over the directions theta.

    References:
        N. Bonneel et al., J. Math. Imaging Vis. 51 (2015) 22.
    """
    x, y = _as_2d(x), _as_2d(y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"dimension mismatch: {x.shape} vs {y.shape}")
    theta = np.random.default_rng(seed).standard_normal((n_projections, x.shape[1]))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    px, py = x @ theta.T, y @ theta.T
    return float(np.mean([wasserstein1(px[:, k], py[:, k]) for k in range(n_projections)]))


def _sqrtm_psd(s: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix via its eigendecomposition."""
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet (2-Wasserstein squared) distance between two Gaussians.

    ``d^2 = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``. The trace term uses the
    symmetric product ``S1^1/2 S2 S1^1/2``, whose eigenvalues are those of ``S1 S2`` but which
    ``eigh`` handles stably (no complex parts, tiny negative eigenvalues clipped to 0).

    Args:
        mu1: mean of the first Gaussian, shape (D,).
        sigma1: its covariance, shape (D, D), symmetric PSD.
        mu2: mean of the second Gaussian, shape (D,).
        sigma2: its covariance, shape (D, D), symmetric PSD.

    Returns:
        The squared distance (>= 0 up to round-off).

    References:
        D. C. Dowson and B. V. Landau, J. Multivar. Anal. 12 (1982) 450; M. Heusel et al.,
        NeurIPS 2017 (FID); R. Kansal et al., Phys. Rev. D 107 (2023) 076017 (FPD).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    r1 = _sqrtm_psd(s1)
    product = r1 @ s2 @ r1
    w = np.linalg.eigvalsh((product + product.T) / 2)
    tr_covmean = float(np.sum(np.sqrt(np.clip(w, 0.0, None))))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def frechet_from_samples(x: np.ndarray, y: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two samples.

    Means and unbiased covariances (``ddof=1``, as FID and JetNet's FPD use ``np.cov``). JetNet
    further extrapolates FPD to infinite sample size; this is the plain finite-sample value.

    Args:
        x: first sample, shape (N,) or (N, D), N >= 2.
        y: second sample, shape (M,) or (M, D), M >= 2.

    Returns:
        ``frechet_distance`` of the two fitted Gaussians.
    """
    x, y = _as_2d(x), _as_2d(y)
    cov = lambda a: np.atleast_2d(np.cov(a, rowvar=False))
    return frechet_distance(x.mean(axis=0), cov(x), y.mean(axis=0), cov(y))


def _power(base: np.ndarray, degree: int) -> np.ndarray:
    """``base ** degree`` for an integer degree by repeated multiplication, in place: several times
    faster than numpy's general power on the (N x N) kernel matrices."""
    if degree != int(degree) or degree < 1:
        return base**degree
    out = base.copy()
    for _ in range(int(degree) - 1):
        out *= base
    return out


def mmd2_unbiased(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> float:
    """Unbiased MMD^2 estimate with the polynomial kernel ``k(a, b) = (gamma a.b + coef0)^degree``.

    ``MMD^2 = sum_{i!=j} k(x_i, x_j) / (n(n-1)) + sum_{i!=j} k(y_i, y_j) / (m(m-1)) - 2 mean k(x_i, y_j)``;
    it can be slightly negative when the distributions agree.

    Args:
        x: first sample, shape (N,) or (N, D), N >= 2.
        y: second sample, shape (M,) or (M, D), M >= 2.
        degree: polynomial degree (3 in KID, 4 in JetNet's KPD).
        gamma: scale of the dot product; 1 / D if None.
        coef0: additive constant.

    Returns:
        The estimate.

    References:
        A. Gretton et al., JMLR 13 (2012) 723, eq. 3.
    """
    x, y = _as_2d(x), _as_2d(y)
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least 2 samples on each side")
    g = 1.0 / x.shape[1] if gamma is None else gamma
    k = lambda a, b: _power(g * (a @ b.T) + coef0, degree)
    kxx, kyy = k(x, x), k(y, y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2.0 * k(x, y).mean()
    )


def kernel_distance(
    x: np.ndarray,
    y: np.ndarray,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    n_subsets: int = 10,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel distance (KID / KPD): unbiased polynomial-kernel MMD^2 averaged over random subsets.

    Each subset draws ``min(subset_size, N, M)`` points from each sample with replacement (as
    JetNet's ``kpd`` does, which keeps the estimate unbiased for the two empirical distributions),
    and ``mmd2_unbiased`` is evaluated on it. Defaults follow KID (cubic kernel, mean and std);
    JetNet's KPD uses ``degree=4`` and reports median and half the 16-84 % interquantile range.

    Args:
        x: real sample, shape (N,) or (N, D), N >= 2.
        y: generated sample, shape (M,) or (M, D), M >= 2.
        degree: polynomial degree.
        gamma: scale of the dot product; 1 / D if None.
        coef0: additive constant.
        n_subsets: number of subsets.
        subset_size: points per subset and sample.
        seed: seed of the subset draws.

    Returns:
        ``(mean, std)`` of the per-subset estimates (population std, ``ddof=0``).

    References:
        M. Binkowski et al., ICLR 2018 (KID); R. Kansal et al., Phys. Rev. D 107 (2023) 076017 (KPD).
    """
    x, y = _as_2d(x), _as_2d(y)
    rng = np.random.default_rng(seed)
    k = min(subset_size, x.shape[0], y.shape[0])
    values = [
        mmd2_unbiased(x[rng.integers(0, x.shape[0], k)], y[rng.integers(0, y.shape[0], k)], degree, gamma, coef0)
        for _ in range(n_subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


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
    pos, neg = _as_1d(scores_pos), _as_1d(scores_neg)
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
    x, y = _as_2d(x), _as_2d(y)
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


def _standardized(real: Properties, fake: Properties) -> tuple[np.ndarray, np.ndarray]:
    """Stack both property dicts and standardize them by the real mean and std (std 0 -> 1)."""
    keys = list(real)
    x, y = stack_properties(real, keys), stack_properties(fake, keys)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std, (y - mean) / std


def w1_marginals(
    real: Properties, fake: Properties, cond: Properties | None = None, scale: str = "none"
) -> dict[str, float]:
    """Metric entry: exact W1 of every property's marginal.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        scale: ``"none"`` for W1 in data units, ``"std"`` to divide by the real std (ddof=0;
            left undivided where that std is 0), which makes properties of different units comparable.

    Returns:
        ``{p: W1}`` for every property p.
    """
    if scale not in ("none", "std"):
        raise ValueError(f"scale must be 'none' or 'std', got {scale!r}")
    out = {}
    for p in real:
        w = wasserstein1(real[p], fake[p])
        s = float(np.std(real[p])) if scale == "std" else 0.0
        out[p] = w / s if s > 0 else w
    return out


def ks_marginals(real: Properties, fake: Properties, cond: Properties | None = None) -> dict[str, float]:
    """Metric entry: exact two-sample KS statistic of every property's marginal.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.

    Returns:
        ``{p: KS}`` for every property p.
    """
    return {p: ks_statistic(real[p], fake[p]) for p in real}


def multivariate(
    real: Properties,
    fake: Properties,
    cond: Properties | None = None,
    seed: int = 0,
    max_samples: int = 2000,
    n_projections: int = 128,
    standardize: bool = True,
) -> dict[str, float]:
    """Metric entry: energy distance and sliced W1 of the joint distribution of all properties.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        seed: seed of the subsampling and of the projections.
        max_samples: subsample size of ``energy_distance``.
        n_projections: directions of ``sliced_w1``.
        standardize: standardize every property by the real mean and std first, so that properties
            in different units weigh alike.

    Returns:
        ``{"energy": energy_distance, "sliced_w1": sliced_w1}``.
    """
    if standardize:
        x, y = _standardized(real, fake)
    else:
        x, y = stack_properties(real), stack_properties(fake, list(real))
    return {
        "energy": energy_distance(x, y, max_samples=max_samples, seed=seed),
        "sliced_w1": sliced_w1(x, y, n_projections=n_projections, seed=seed),
    }


def fpd_kpd(
    real: Properties,
    fake: Properties,
    cond: Properties | None = None,
    seed: int = 0,
    degree: int = 3,
    n_subsets: int = 10,
    subset_size: int = 1000,
) -> dict[str, float]:
    """Metric entry: Frechet and kernel distances of the joint distribution of all properties.

    The properties are standardized by the real mean and std (ddof=0; std 0 -> 1) before both, so
    the values do not depend on units; JetNet similarly rescales, by the real max |x| per feature.

    Args:
        real: property name -> (N,) array of the reference sample.
        fake: property name -> (M,) array of the generated sample; must hold every key of ``real``.
        cond: unused; part of the metric-entry signature.
        seed: seed of the KPD subsets.
        degree: polynomial degree of the KPD kernel.
        n_subsets: KPD subsets.
        subset_size: KPD points per subset.

    Returns:
        ``{"fpd": frechet_from_samples, "kpd": kernel_distance mean, "kpd_err": its std}``.
    """
    x, y = _standardized(real, fake)
    kpd, kpd_err = kernel_distance(x, y, degree=degree, n_subsets=n_subsets, subset_size=subset_size, seed=seed)
    return {"fpd": frechet_from_samples(x, y), "kpd": kpd, "kpd_err": kpd_err}


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
