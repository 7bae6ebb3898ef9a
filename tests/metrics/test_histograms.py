import numpy as np
import pytest

from gentwin.metrics.histograms import hist_chi2, hist_edges, histogram_chi2

EDGES = np.array([0.0, 1.0, 2.0, 3.0])


def test_identical_samples_give_zero():
    a = np.random.default_rng(0).normal(size=500)
    chi2, n_bins = hist_chi2(a, a.copy(), bins=20)
    assert chi2 == 0.0
    assert 1 <= n_bins <= 20


def test_three_bins_by_hand():
    real = np.array([0.5, 1.5, 1.5, 2.5, 2.5, 2.5])  # E = (1, 2, 3)
    fake = np.array([0.5, 0.5, 1.5, 2.5, 2.5, 2.5])  # O = (2, 1, 3)
    expected = (2 - 1) ** 2 / 1 + (1 - 2) ** 2 / 2 + 0.0
    assert hist_chi2(real, fake, bins=EDGES) == (pytest.approx(expected, rel=1e-14), 3)
    # equal-width bins over the joint range [0.5, 2.5] put the values in the same three bins
    assert hist_chi2(real, fake, bins=3) == (pytest.approx(expected, rel=1e-14), 3)
    # a generated sample twice as large is rescaled to the real sample size
    assert hist_chi2(real, np.repeat(fake, 2), bins=3) == (pytest.approx(expected, rel=1e-14), 3)
    # chi2 is in units of real counts: doubling the real sample doubles it
    assert hist_chi2(np.repeat(real, 2), fake, bins=3)[0] == pytest.approx(2 * expected, rel=1e-14)


def test_bin_without_real_entries_joins_the_next_one():
    real = np.array([0.5, 2.5, 2.5])  # E = (1, 0, 2) -> (1, 2)
    fake = np.array([1.5, 1.5, 1.5])  # O = (0, 3, 0) -> (0, 3)
    assert hist_chi2(real, fake, bins=EDGES) == (pytest.approx(1 / 1 + 1 / 2, rel=1e-14), 2)


def test_trailing_bins_without_real_entries_join_the_last_filled_one():
    real = np.array([0.5, 0.5, 1.5])  # E = (2, 1, 0) -> (2, 1)
    fake = np.array([2.5, 2.5, 2.5])  # O = (0, 0, 3) -> (0, 3)
    assert hist_chi2(real, fake, bins=EDGES) == (pytest.approx(4 / 2 + 4 / 1, rel=1e-14), 2)


def test_edges_span_joint_or_real_range():
    real, fake = np.array([0.0, 1.0, 2.0]), np.array([-2.0, 4.0])
    np.testing.assert_allclose(hist_edges(real, fake, bins=3), [-2.0, 0.0, 2.0, 4.0])
    np.testing.assert_allclose(hist_edges(real, fake, bins=2, span="real"), [0.0, 1.0, 2.0])
    np.testing.assert_allclose(hist_edges(np.ones(2), np.ones(3), bins=2), [0.5, 1.0, 1.5])
    with pytest.raises(ValueError):
        hist_edges(real, fake, span="fake")


def test_generated_values_outside_the_edges_are_counted_in_the_edge_bins():
    real = np.array([0.0, 1.0, 2.0, 3.0])  # span "real": edges (0, 1.5, 3), E = (2, 2)
    fake = np.array([-5.0, 0.0, 1.0, 2.0])  # -5 is underflow: O = (3, 1), not (2, 1)
    assert hist_chi2(real, fake, bins=2, span="real") == (pytest.approx(1 / 2 + 1 / 2, rel=1e-14), 2)


def test_point_masses():
    assert hist_chi2(np.ones(3), np.ones(5), bins=10) == (0.0, 1)
    # all real mass in one bin: every generated value is merged into it, whatever its position
    assert hist_chi2(np.zeros(4), np.array([0.0, 7.0]), bins=4) == (0.0, 1)


def test_non_finite_values_give_nan():
    chi2, n_bins = hist_chi2(np.arange(5.0), np.array([1.0, np.nan, 2.0]))
    assert np.isnan(chi2) and n_bins == 0


def test_entry_returns_chi2_and_bin_count_per_property():
    real = {"x0": np.array([0.5, 1.5, 1.5, 2.5, 2.5, 2.5]), "x1": np.zeros(6)}
    fake = {"x0": np.array([0.5, 0.5, 1.5, 2.5, 2.5, 2.5]), "x1": np.zeros(2)}
    out = histogram_chi2(real, fake, bins=3)
    assert out == {"x0": pytest.approx(1.5, rel=1e-14), "x0_nbins": 3.0, "x1": 0.0, "x1_nbins": 1.0}
    assert all(type(v) is float for v in out.values())
