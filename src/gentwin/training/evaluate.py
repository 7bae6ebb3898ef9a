"""Held-out evaluation: generated vs real samples through the dataset's key properties.

Metric entries (``configs/metric/``) are pure functions
``(real: dict[str, ndarray], fake: dict[str, ndarray], cond: dict[str, ndarray] | None) -> dict[str, float]``;
their values are named ``<entry>/<key>``, or just ``<entry>`` when the key repeats the entry's name.
An entry sees the properties with one value per sample, ``(N,)``; one that sets
``per_sample_arrays = True`` (e.g. the TPC sparsity entry) also sees a datamodule's per-sample arrays
such as the TPC ``cells``, ``(N, P * T)``; one that sets ``takes_floor_reference = True`` (the
properties entry) also gets ``floor_reference=``: the datamodule's second real sample of the held-out
size (``floor_properties``), or ``None``. Entries named in the group's ``final_only`` run only in
the final evaluation (:func:`final_evaluation`), not at each validation.
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


def run_metrics(entries: dict, real: dict, fake: dict, cond: dict | None,
                floor_reference: dict | None = None) -> dict[str, float]:
    """Applies every metric entry; returns the flat ``name -> value`` dict.

    Entries get ``per_sample_values`` of the properties, unless their function sets
    ``per_sample_arrays = True`` (a Hydra partial's ``func``), which get every property; those that set
    ``takes_floor_reference = True`` also get ``floor_reference`` (a second real sample's properties).
    """
    scalar = (per_sample_values(real), per_sample_values(fake))
    out: dict[str, float] = {}
    for name, f in entries.items():
        arrays = getattr(getattr(f, "func", f), "per_sample_arrays", False)
        extra = {}
        if getattr(getattr(f, "func", f), "takes_floor_reference", False):
            extra["floor_reference"] = None if floor_reference is None else per_sample_values(floor_reference)
        out.update(metric_names(name, f(real, fake, cond, **extra) if arrays else f(*scalar, cond, **extra)))
    return out


def evaluate(model, dm, entries: dict, figures: bool = True, seed: int | None = None, n: int | None = None):
    """Samples one event per held-out event (for its conditions) and compares them: every validation.

    The held-out events are ``dm.eval_slice()``, the first ``n`` of them if ``n`` is given. Non-finite
    generated samples (a diverging flow, an overflowing inverse transform) are counted, as
    ``finite_fraction``, and left out of the comparison together with the held-out events at their
    conditions, so one bad sample does not blank an evaluation; with fewer than 2 finite samples only
    ``finite_fraction``, ``nll`` and ``samples_per_second`` are given.

    Returns:
        ``(metrics, figures, samples)``: the flat metrics dict (plus ``nll`` for a family with a
        likelihood, ``finite_fraction`` and ``samples_per_second``), a dict of matplotlib figures, and
        ``(fake, c)`` in data space, the non-finite samples included.
    """
    sl = dm.eval_slice()
    if n is not None:
        sl = slice(sl.start, min(sl.stop, sl.start + n))
    real = dm.x_raw_val[sl]
    c_raw = None if dm.c_raw_val is None else dm.c_raw_val[sl]
    c = None if c_raw is None else torch.as_tensor(c_raw, dtype=torch.float32)  # data units, as a user gives them
    if seed is not None:
        torch.manual_seed(seed)
    model.sample(min(len(real), 256), None if c is None else c[:256])  # warm-up
    t0 = time.perf_counter()
    fake = model.sample(len(real), c).cpu().numpy()
    rate = len(real) / max(time.perf_counter() - t0, 1e-9)
    real_props = dm.real_properties()
    if n is not None:
        real_props = {k: np.asarray(v)[: len(real)] for k, v in real_props.items()}
    finite = np.isfinite(fake.reshape(len(fake), -1)).all(axis=1)
    keep = slice(None) if finite.all() else finite
    c_kept = None if c_raw is None else c_raw[keep]
    if not finite.all():
        real_props = {k: np.asarray(v)[finite] for k, v in real_props.items()}
    second = dm.floor_properties()
    if second is not None:  # of the size of the held-out sample compared
        second = {k: np.asarray(v)[: int(finite.sum())] for k, v in second.items()}
    metrics = {}
    if finite.sum() >= 2:
        metrics = run_metrics(entries, real_props, dm.properties(fake[keep], c_kept), dm.conditions(c_kept),
                              second)
    if model.has_likelihood and model.nll_samples != 0:  # flows exactly, VAEs through the ELBO bound: nats
        m = model.nll_samples  # per sample; a costly likelihood (an ODE solve): the first m events
        with torch.no_grad():
            x = torch.as_tensor(real[:m], dtype=torch.float32, device=model.device)
            cx = None if c is None else c[:m].to(model.device)
            lp = model.log_prob(x, cx)
        metrics["nll"] = float(-lp.mean())
        metrics.update(model.diagnostics(x, cx))
    metrics["finite_fraction"] = float(finite.mean())
    metrics["samples_per_second"] = rate
    figs = dm.figures(real[keep], fake[keep], c_kept) if figures and finite.sum() >= 2 else {}
    return metrics, figs, (fake, c_raw)


def final_evaluation(model, dm, entries: dict, seed: int, n: int | None = None, figures: bool = True,
                     speed: bool = True):
    """The one final evaluation of a model: what a run writes into ``metrics.json`` and what
    ``evaluate <checkpoint>`` writes into ``evaluation.json`` (``metrics``), the same numbers for the
    same weights, ``seed`` and ``n``.

    :func:`evaluate` with every metric entry (those of ``metric.final_only`` included), the torch
    RNG seeded with ``seed`` before sampling, on the first ``n`` held-out events (all if ``None``).
    With ``speed``, the samples per second at batch 1, 100 and 10,000 (``speed/...``,
    :func:`gentwin.training.timing.speeds`). Only ``samples_per_second`` and ``speed/...`` are
    measurements and vary between calls. Its long steps (the classifier
    test, leaf post-processing) print progress lines (``gentwin.progress.shown``), into ``run.log`` in a run.
    """
    from gentwin.progress import shown

    with shown():
        metrics, figs, samples = evaluate(model, dm, entries, figures=figures, seed=seed, n=n)
    if speed:  # after the comparison, so that the timing's random draws change none of its numbers
        from gentwin.training.timing import speeds

        metrics.update(speeds(model, dm.c_raw_val))  # conditions in data units, as model.sample takes them
    return metrics, figs, samples


def validation_entries(entries: dict, final_only, monitor: str) -> dict:
    """The entries evaluated at each validation: all but those named in ``metric.final_only`` (costly
    ones, such as the classifier test, which trains a network). A name that is no entry (one removed
    with ``~metric.entries.<name>``) is ignored.

    Raises:
        ConfigError: ``final_only`` names the entry that gives the monitored metric.
    """
    from gentwin.errors import ConfigError

    final_only = set(final_only or [])
    if monitor.split("/")[0] in final_only & set(entries):
        raise ConfigError(f"metric.monitor={monitor} comes from entry {monitor.split('/')[0]!r}, which "
                          f"metric.final_only keeps out of the validations that choose the best checkpoint")
    return {k: f for k, f in entries.items() if k not in final_only}
