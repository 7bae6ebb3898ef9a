"""Outcomes of a run that its numbers alone do not say: each a warning line (what happened, what to
try), printed in the run's summary and listed under ``warnings`` in ``metrics.json``."""

from __future__ import annotations

import math

import numpy as np

#: A VAE's KL to the prior below this (nats per sample) means the decoder ignores the latent code.
KL_COLLAPSE = 0.01
#: Data exactly zero at least this often, samples zero less than a tenth as often: "never zero".
ZERO_SHARE = 0.10


def outcome_warnings(metrics: dict, monitor: str, real: np.ndarray | None = None,
                     fake: np.ndarray | None = None) -> list[str]:
    """The warnings of a finished run.

    Args:
        metrics: the final metrics (``gentwin.training.evaluate``).
        monitor: ``metric.monitor``, the name in ``metrics`` the best checkpoint is chosen on.
        real, fake: held-out and generated samples in data units, to compare how often each is zero.
    """
    out = []
    value = metrics.get(monitor)
    if value is None or not math.isfinite(value):
        valid = next((v for k, v in metrics.items() if k.endswith("valid_rate")), None)
        why = f" ({valid:.0%} of the generated samples were valid)" if valid is not None else ""
        out.append(f"{monitor} is {value}{why}: no validation gave a finite value, so best.ckpt was not chosen "
                   f"by it; look at the samples and the val/ figures, and train longer or with a smaller "
                   f"learning rate")
    kl = metrics.get("kl")
    if kl is not None and kl < KL_COLLAPSE:
        out.append(f"KL collapse: the posterior is {kl:.2g} nats per sample from the prior (< {KL_COLLAPSE}), so the "
                   f"decoder ignores the latent code; try a smaller beta or a warm-up (schedule/beta=linear or "
                   f"cyclical), or a smaller decoder")
    if real is not None and fake is not None and len(real) and len(fake):
        fake = np.asarray(fake).reshape(len(fake), -1)
        fake = fake[np.isfinite(fake).all(axis=1)]
        real = np.abs(np.asarray(real, dtype=np.float64))
        zr = float(np.mean(real == 0))
        # A sample reads as zero below half the data's smallest non-zero value (a sigmoid's 1e-4 on an
        # image is zero; a shower's 1e-4 MeV where the data's smallest deposit is 1e-6 MeV is not).
        nonzero = real[real > 0]
        tol = 0.5 * float(nonzero.min()) if nonzero.size else 0.0
        zf = float(np.mean(np.abs(fake) <= tol)) if len(fake) else 0.0
        if zr >= ZERO_SHARE and zf < zr / 10:
            out.append(f"never zero: the data are exactly 0 in {zr:.0%} of their values, the samples in {zf:.1%} "
                       f"(below half the smallest non-zero data value, {tol:.2g}); a continuous output rarely hits "
                       f"0: try an output that can (a ReLU), or threshold the samples as the detector does")
    return out
