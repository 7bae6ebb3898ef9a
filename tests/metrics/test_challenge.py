"""Separation power in log bins: known answers, and when ``"auto"`` chooses them."""

from __future__ import annotations

import numpy as np
import pytest

from gentwin.metrics.challenge import bin_edges, separation_power, separation_powers, spans_decades

# Reference at 1 and 1000 (half each), the other sample all at 50. Three linear bins [1, 334), [334, 667),
# [667, 1000] put 50 beside the reference's 1: h1 = (1/2, 0, 1/2), h2 = (1, 0, 0). Three log bins
# [1, 10), [10, 100), [100, 1000] put it alone in the middle one: h2 = (0, 1, 0), disjoint.
REF, OTHER = np.repeat([1.0, 1000.0], 50), np.full(40, 50.0)
LINEAR = 0.5 * (0.25 / 1.5 + 0.25 / 0.5)


def test_log_bins_known_answers():
    assert separation_power(REF, OTHER, bins=3) == pytest.approx(LINEAR)
    assert separation_power(REF, OTHER, bins=3, log_bins=True) == pytest.approx(1.0)
    assert separation_power(REF, OTHER, bins=3, log_bins="auto") == pytest.approx(1.0)  # 3 decades
    np.testing.assert_allclose(bin_edges(REF, 3, True)[0], [1, 10, 100, 1000], rtol=1e-12)
    # Zeros fall below the first log edge and count in the first bin, as out-of-range values do.
    with_zeros = np.concatenate([REF, np.zeros(100)])  # h1 = (3/4, 0, 1/4)
    assert separation_power(with_zeros, OTHER, bins=3, log_bins=True) == pytest.approx(
        0.5 * (0.75**2 / 0.75 + 1 + 0.25**2 / 0.25))


def test_auto_takes_log_bins_only_for_non_negative_values_over_two_decades():
    assert spans_decades(REF) and spans_decades(np.concatenate([REF, [0.0]]))
    assert not spans_decades(np.repeat([1.0, 99.0], 50))  # under two decades
    assert not spans_decades(np.concatenate([REF, [-1.0]]))  # not a positive quantity
    assert not bin_edges(np.repeat([1.0, 99.0], 50), 3, "auto")[1]
    # A list of name prefixes: "auto" for the matching properties, linear bins for the others.
    out = separation_powers({"energy_1": REF, "x": REF}, {"energy_1": OTHER, "x": OTHER}, bins=3,
                            log_bins=["energy_"])
    assert out["energy_1"] == pytest.approx(1.0) and out["x"] == pytest.approx(LINEAR)
    with pytest.raises(ValueError, match="log_bins"):
        separation_power(REF, OTHER, log_bins="yes")
