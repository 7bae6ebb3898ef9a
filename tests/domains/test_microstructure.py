"""Microstructures: Voronoi-grain simulator, grain statistics and their metric, the VAE nets of Görmüş 2023."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from conftest import assert_rounding_close
from gentwin.domains.microstructure.nets import microstructure_vae_nets
from gentwin.domains.microstructure.properties import MICROSTRUCTURE_PROPERTIES, microstructure_properties
from gentwin.domains.microstructure.simulator import simulate_microstructures
from gentwin.metrics.properties import property_metric
from gentwin.nets.conv import count_params


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


# Görmüş 2023 (microstructure VAE), Table 3.1: latent dimension -> "Total params" (Keras, batchnorm moving stats
# included).
TABLE_3_1 = {2: 98_087, 4: 103_723, 8: 114_995, 16: 137_539, 32: 182_627}
# Görmüş's (2023) layer sweep at latent 16, from the author's notebooks (the report prints no counts).
LAYER_SWEEP = {2: 244_931, 3: 132_675, 4: 137_539}
# Batchnorm running mean + variance of the decoder: 2 x (128 + 64 + 32 + 16) at 4 layers.
BN_STATS = {2: 2 * (32 + 16), 3: 2 * (64 + 32 + 16), 4: 2 * (128 + 64 + 32 + 16)}


@pytest.mark.parametrize("latent_dim, expected", TABLE_3_1.items())
def test_microstructure_latent_sweep_counts(latent_dim, expected):
    with torch.device("meta"):
        enc, dec = microstructure_vae_nets(latent_dim)
    assert count_params(enc, dec, bn_stats=True) == expected
    assert count_params(enc, dec) == expected - BN_STATS[4]  # Keras' "Trainable params"
    assert enc.flat_features == 3 * 3 * 128


def test_microstructure_steps_and_layer_sweep():
    def total(latent_dim, num_layers=4):
        with torch.device("meta"):
            return count_params(*microstructure_vae_nets(latent_dim, num_layers), bn_stats=True)

    # 2 x (1,152 + 1) for mean and log-variance + 512 for the decoder Linear, per latent dimension.
    assert total(4) - total(2) == 5_636 and total(8) - total(4) == 11_272
    for num_layers, expected in LAYER_SWEEP.items():
        assert total(16, num_layers) == expected
        with torch.device("meta"):
            assert count_params(*microstructure_vae_nets(16, num_layers)) == expected - BN_STATS[num_layers]


def test_microstructure_forward_matches_keras_layout():
    enc, dec = microstructure_vae_nets(8)
    x = torch.rand(2, 3, 64, 64)
    feats = enc.features(x)
    assert feats.shape == (2, 128, 3, 3)  # 64 -> 32 -> 31/15 -> 14/7 -> 6/3, as in the notebook
    mean, log_var = enc(x).chunk(2, dim=1)
    assert mean.shape == log_var.shape == (2, 8)
    assert dec(mean).shape == (2, 3, 64, 64)
    assert dec.fc(mean).shape == (2, 512)
    ups = [m.scale_factor for m in dec.blocks if isinstance(m, nn.Upsample)]
    assert ups == [2.0, 2.0, 2.0]
    assert [m.scale_factor for m in microstructure_vae_nets(8, 2)[1].blocks if isinstance(m, nn.Upsample)] == [4.0, 2.0]
