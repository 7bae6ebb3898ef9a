"""Held-out evaluation: generated vs real samples through the dataset's key properties.

Metric entries (``configs/metric/``) are pure functions
``(real: dict[str, ndarray], fake: dict[str, ndarray], cond: dict[str, ndarray] | None) -> dict[str, float]``;
their values are named ``<entry>/<key>``, or just ``<entry>`` when the key repeats the entry's name.
An entry sees the properties with one value per sample, ``(N,)``; one that sets
``per_sample_arrays = True`` (e.g. the TPC sparsity entry) also sees a datamodule's per-sample arrays
such as the TPC ``cells``, ``(N, P * T)``.
"""

from __future__ import annotations

import time

import numpy as np
import torch


def metric_names(entry: str, values: dict[str, float]) -> dict[str, float]:
    return {(entry if k == entry else f"{entry}/{k}"): float(v) for k, v in values.items()}


def per_sample_values(props: dict) -> dict:
    """The properties with one value per sample, ``(N,)``: what every metric entry may read."""
    return {k: v for k, v in props.items() if np.ndim(v) == 1}


def run_metrics(entries: dict, real: dict, fake: dict, cond: dict | None) -> dict[str, float]:
    """Applies every metric entry; returns the flat ``name -> value`` dict.

    Entries get ``per_sample_values`` of the properties, unless their function sets
    ``per_sample_arrays = True`` (a Hydra partial's ``func``), which get every property.
    """
    scalar = (per_sample_values(real), per_sample_values(fake))
    out: dict[str, float] = {}
    for name, f in entries.items():
        arrays = getattr(getattr(f, "func", f), "per_sample_arrays", False)
        out.update(metric_names(name, f(real, fake, cond) if arrays else f(*scalar, cond)))
    return out


def evaluate(model, dm, entries: dict, figures: bool = True, seed: int | None = None):
    """Samples as many events as the held-out split (for its conditions) and compares them.

    Returns:
        ``(metrics, figures, samples)``: the flat metrics dict (plus ``samples_per_second``), a dict
        of matplotlib figures, and ``(fake, c)`` in data space.
    """
    sl = dm.eval_slice()
    real = dm.x_raw_val[sl]
    c_raw = None if dm.c_raw_val is None else dm.c_raw_val[sl]
    c = None if dm.c_val is None else dm.c_val[sl]
    if seed is not None:
        torch.manual_seed(seed)
    model.sample(min(len(real), 256), None if c is None else c[:256])  # warm-up
    t0 = time.perf_counter()
    fake = model.sample(len(real), c).cpu().numpy()
    rate = len(real) / max(time.perf_counter() - t0, 1e-9)
    real_props = dm.real_properties()
    # Non-finite samples (a diverging flow, an overflowing inverse transform) are counted in
    # finite_fraction and left out of the comparison, so one bad sample does not blank a validation.
    finite = np.isfinite(fake.reshape(len(fake), -1)).all(axis=1)
    keep = slice(None) if finite.all() else finite
    c_kept = None if c_raw is None else c_raw[keep]
    if not finite.all():
        real_props = {k: np.asarray(v)[finite] for k, v in real_props.items()}
    metrics = {}
    if finite.sum() >= 2:
        metrics = run_metrics(entries, real_props, dm.properties(fake[keep], c_kept), dm.conditions(c_kept))
    if model.has_likelihood:  # flows exactly, VAEs through the ELBO bound: nats per sample
        with torch.no_grad():
            x = torch.as_tensor(real, dtype=torch.float32, device=model.device)
            lp = model.log_prob(x, None if c is None else c.to(model.device))
        metrics["nll"] = float(-lp.mean())
    metrics["finite_fraction"] = float(finite.mean())
    metrics["samples_per_second"] = rate
    figs = dm.figures(real[keep], fake[keep], c_kept) if figures and finite.sum() >= 2 else {}
    return metrics, figs, (fake, c_raw)
