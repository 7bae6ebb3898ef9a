"""Microstructures: Voronoi-grain simulator, grain statistics and their metric."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from conftest import assert_rounding_close
from gentwin.domains.microstructure.properties import MICROSTRUCTURE_PROPERTIES, microstructure_properties
from gentwin.domains.microstructure.simulator import simulate_microstructures
from gentwin.metrics.properties import property_metric


def test_shape_range_and_determinism():
    x = simulate_microstructures(4, np.random.default_rng(0), size=32)
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    np.testing.assert_array_equal(x, simulate_microstructures(4, np.random.default_rng(0), size=32))
    assert not np.array_equal(x, simulate_microstructures(4, np.random.default_rng(1), size=32))
    # grains are bright orientation colours (max channel 1), boundaries dark
    np.testing.assert_allclose(np.unique(x.max(axis=1)), [0.05, 1.0])


def test_grain_count_follows_seed_points():
    for k in (10, 40):
        props = microstructure_properties(simulate_microstructures(10, np.random.default_rng(k), grains=(k, 0)))
        # every Voronoi cell is convex and holds its seed: all but the tiniest cells are counted
        assert 0.9 * k <= props["grain_count"].mean() <= k
        assert props["mean_grain_area"].mean() == pytest.approx(
            64 * 64 * (1 - props["boundary_fraction"].mean()) / props["grain_count"].mean(), rel=0.05
        )
    spread = microstructure_properties(simulate_microstructures(20, np.random.default_rng(2), grains=(30, 8)))
    assert spread["grain_count"].std() > 3


def test_boundary_fraction_grows_with_width():
    fractions = [
        microstructure_properties(simulate_microstructures(5, np.random.default_rng(0), boundary_width=w))[
            "boundary_fraction"
        ].mean()
        for w in (1.0, 2.0, 3.0)
    ]
    assert fractions[0] < fractions[1] < fractions[2]
    # about (boundary length) x width: doubling the width nearly doubles the fraction
    assert 1.6 < fractions[1] / fractions[0] < 2.2


def test_size_spread_widens_grain_sizes():
    def area_cv(spread):
        x = simulate_microstructures(1, np.random.default_rng(5), grains=(40, 0), size_spread=spread)
        labels, k = ndimage.label(x[0].max(axis=0) >= 0.3)
        sizes = np.bincount(labels.ravel())[1:]
        return sizes.std() / sizes.mean()

    assert area_cv(2.0) > area_cv(0.0)


def test_properties_of_a_known_image():
    img = np.ones((1, 3, 8, 8), dtype=np.float32)
    img[0, :, :, 3] = 0.0  # one vertical boundary line
    img[0, 0, :, :3] = 0.2  # left grain: (0.2, 1, 1)
    props = microstructure_properties(img)
    assert set(props) == set(MICROSTRUCTURE_PROPERTIES)
    assert props["grain_count"][0] == 2 and props["mean_grain_area"][0] == 28
    assert props["boundary_fraction"][0] == pytest.approx(1 / 8)
    # The mean of 7 float32 values of at most 1: within 7 eps of 1 in any summation order.
    assert_rounding_close(props["color_mean_r"][0], (3 * 0.2 + 4 * 1.0) / 7, k=8, scale=1.0, dtype=torch.float32)
    assert props["color_std_g"][0] == 0.0
    empty = microstructure_properties(np.zeros((1, 3, 8, 8), dtype=np.float32))
    assert empty["grain_count"][0] == 0 and np.isnan(empty["mean_grain_area"][0])


def test_microstructure_metric():
    real = microstructure_properties(simulate_microstructures(20, np.random.default_rng(0), grains=(30, 5)))
    same = property_metric(real, real)
    assert same["valid_rate"] == 1.0 and same["grain_count_w1"] == 0.0 and same["grain_count_ks"] == 0.0
    fine = microstructure_properties(simulate_microstructures(20, np.random.default_rng(1), grains=(60, 5)))
    out = property_metric(real, fine)
    assert out["grain_count_ks"] == 1.0 and out["grain_count_w1"] > 3.0
    assert out["boundary_fraction_w1"] > out["color_mean_r_w1"]
