"""HEP histograms (gentwin.plots.hep): lattice bins, ratio limits and arrows, log axes, units, the
generic marginals figure on the scorecard's halves."""

from __future__ import annotations

import numpy as np
import pytest

from gentwin.plots.hep import lattice_edges, lattice_step, ratio_limits


def test_fractions_of_five_voxels_get_one_bin_per_value():
    v = np.random.default_rng(0).integers(0, 6, 1000) / 5  # k / 5
    assert lattice_step(v) == pytest.approx(0.2)
    edges = lattice_edges(v, 0.2)
    np.testing.assert_allclose(edges, (np.arange(7) - 0.5) * 0.2, atol=1e-12)
    assert (np.histogram(v, edges)[0] > 0).all()  # no empty bin between two filled ones
    assert lattice_step(np.random.default_rng(0).normal(size=100)) is None
    # 1000 lattice points into at most 40 bins of 25 points each
    assert len(lattice_edges(np.arange(1000) / 1000, 1e-3)) - 1 == 40


def test_ratio_limits_follow_the_data_within_sane_bounds():
    assert ratio_limits(np.array([0.8, 1.2, np.nan])) == pytest.approx((1 - 0.22, 1 + 0.22))
    assert ratio_limits(np.array([1.0, 1.01])) == pytest.approx((1 - 0.099, 1 + 0.099))
    assert ratio_limits(np.array([0.01, 40.0])) == (0.0, 3.0)


def test_marginals_figure_has_units_log_axes_ratio_panels_and_arrows():
    import matplotlib.pyplot as plt

    from gentwin.metrics.challenge import separation_power
    from gentwin.plots.marginals import marginals_figure

    rng = np.random.default_rng(0)
    real = {"energy": np.exp(rng.uniform(0, 9, 2000)), "x": rng.normal(size=2000)}
    fake = {"energy": np.exp(rng.uniform(0, 9, 2000)), "x": rng.normal(0.5, 1, 2000)}
    fig = marginals_figure(real, fake, units={"energy": "MeV"}, seed=3)
    ax, rax, ax2, rax2 = fig.axes
    assert rax.get_xlabel() == "energy [MeV]" and rax2.get_xlabel() == "x"
    assert ax.get_xscale() == "log" and ax2.get_xscale() == "linear"
    perm = np.random.default_rng(3).permutation(2000)  # the scorecard's halves
    value = separation_power(real["x"][perm[:1000]], fake["x"][:1000])
    floor = separation_power(*(real["x"][p] for p in np.split(perm, 2)))
    assert ax2.get_title() == f"sep. {value:.3g} (floor {floor:.2g})"
    lo, hi = rax2.get_ylim()
    assert 0 <= lo < 1 < hi <= 3
    arrows = [line for line in rax2.lines if line.get_marker() in ("^", "v")]
    assert arrows  # a shift by half a std: tail ratios beyond the panel are marked
    plt.close(fig)
