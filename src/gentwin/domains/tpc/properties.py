"""The six image statistics of a pad response, and the metric adapter that skips empty events."""

from __future__ import annotations

import numpy as np
import torch

#: Image statistics of :func:`tpc_properties`, in the baseline's order.
PROPERTY_NAMES = ("Mean0", "Mean1", "Sigma0^2", "Sigma1^2", "Cov01", "Sum")


def tpc_properties(x, c=None) -> dict[str, np.ndarray]:
    """Key properties of TPC responses (the baseline's validation metrics), each (N,) float64.

    With weights w = A / sum(A) over the image cells (negative amplitudes clipped to 0, as in the
    baseline) and cell indices i (pad, 0..P-1) and j (time, 0..T-1):
    Mean0 = E_w[i], Mean1 = E_w[j], Sigma0^2 = Var_w[i], Sigma1^2 = Var_w[j],
    Cov01 = Cov_w[i, j], Sum = sum(A).

    Images with zero total amplitude have no barycenter: their five moments are NaN and their Sum is
    0; :func:`gentwin.domains.tpc.metrics.tpc_chi2` excludes and counts them.

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


def on_valid_events(real: dict, fake: dict, cond: dict | None = None, *, metric, statistics=PROPERTY_NAMES,
                    **params) -> dict[str, float]:
    """Metric-entry adapter: ``metric`` on the ``statistics`` of the events where they are all finite.

    Images with zero total amplitude have NaN moments (:func:`tpc_properties`); distances on the
    statistic vectors need finite values. Each side keeps its own valid events; the count left out
    is :func:`gentwin.domains.tpc.metrics.tpc_chi2`'s ``n_invalid_fake``.

    Args:
        real, fake: property dicts, each ``name -> (N,)`` for the names in ``statistics`` (other keys,
            such as the datamodule's ``cells``, are not passed on).
        cond: passed through (unused by the distances).
        metric: an entry ``(real, fake, cond=None, **params) -> dict``.
        statistics: the properties the metric sees (default the six of :func:`tpc_properties`).
    """
    real = {k: real[k] for k in statistics}
    fake = {k: fake[k] for k in statistics}

    def keep(props):
        ok = np.all([np.isfinite(np.asarray(v, dtype=np.float64)) for v in props.values()], axis=0)
        return {k: np.asarray(v)[ok] for k, v in props.items()}, int(ok.sum())

    (real, n_real), (fake, n_fake) = keep(real), keep(fake)
    if n_real < 2 or n_fake < 2:
        return {"n_valid_fake": float(n_fake)}
    return metric(real, fake, cond, **params)
