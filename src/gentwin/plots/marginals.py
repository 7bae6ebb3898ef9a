"""Marginal histograms of named features, reference against generated (any domain, any file), as
particle physicists show them (:mod:`gentwin.plots.hep`): stairs with statistical errors over a ratio
panel with the floor's band, units on the axes, log axes over more than two decades, and each
feature's separation power beside its floor in its title."""

from __future__ import annotations

import numpy as np

from gentwin.metrics.floors import split_halves


def marginals_figure(real: dict[str, np.ndarray], fake: dict[str, np.ndarray], bins: int = 40,
                     max_panels: int = 16, labels: tuple[str, str] = ("reference", "generated"),
                     units: dict[str, str] | None = None, halves: tuple | None = None, seed: int = 0,
                     log_bins=False):
    """The first ``max_panels`` features, one panel each: the reference half ``A`` against the first
    ``len(B)`` generated samples, the floor from ``A`` against ``B`` -- the rows a scorecard compares.

    Args:
        real, fake: name -> ``(N,)`` values of the reference and the generated sample.
        units: name -> unit of the axis labels (none by default).
        halves: ``(A, B)`` rows of ``real``; default a random split by ``seed``, as
            :func:`gentwin.metrics.floors.scorecard` splits.
        log_bins: the separation power's binning (:func:`gentwin.metrics.challenge.separation_powers`).
        bins, labels: kept for callers of the earlier signature; the binning is
            :func:`gentwin.plots.hep.binning`'s, the legend "reference" and "generated".
    """
    from gentwin.plots.hep import histogram_figure, lattice_step, style

    units = dict(units or {})
    names = [k for k in real if np.ndim(real[k]) == 1][:max_panels]
    n = len(next(iter(real.values())))
    if halves is None:
        halves = split_halves(n, seed)
    ia, ib = halves
    a, b = ({k: np.asarray(real[k], np.float64)[i] for k in names} for i in (ia, ib))
    g = {k: np.asarray(fake[k], np.float64)[: len(ib)] for k in names}
    # A feature of an array (``showers[3]``, ``showers/total``) takes the array's unit (``dataset.units``).
    unit = lambda name: units.get(name) or units.get(name.split("[")[0].split("/")[0], "")
    label = lambda name: f"{name} [{unit(name)}]" if unit(name) else name
    with style():
        return histogram_figure(names, a, b, g, label, cols=4, step=lambda name: lattice_step(a[name]),
                                log_bins=log_bins, unit=unit)
