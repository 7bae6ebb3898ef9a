"""Sparsity statistics of TPC responses (gentwin.domains.tpc.sparsity): known answers, floors, and
what the five-moment profile chi2 does not see."""

from pathlib import Path

import numpy as np
import pytest
import torch

from gentwin.domains.tpc.metrics import tpc_chi2
from gentwin.domains.tpc.properties import tpc_properties
from gentwin.domains.tpc.reader import read_digits
from gentwin.domains.tpc.simulator import simulate_tpc
from gentwin.domains.tpc.sparsity import (
    CELLS,
    cell_spectrum,
    cells,
    empty,
    empty_fraction_error,
    hit_spectrum,
    n_faint,
    n_hits,
    sparsity_distances,
    sparsity_metrics,
    spectrum_edges,
    zero_fraction,
)

REAL_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tpc" / "digits_v4plus_shortFixedPt.dat"
DISTANCES = ("n_hits_w1", "n_hits_chi2", "spectrum_w1", "spectrum_chi2")


def hand_made():
    x = np.zeros((3, 8, 16))
    x[0, 2, 3], x[0, 2, 4], x[0, 5, 9] = 100.0, 0.9, 10.0  # three hits (0.9 is one)
    x[0, 0, 0], x[0, 7, 15] = 0.5, -0.2  # faint: within a decade below 0.9, by size
    x[1, 4, 4], x[1, 4, 5] = 0.05, 0.1  # one faint cell, one as good as 0: an empty response
    return x  # x[2]: all zero, empty


def test_hand_made_statistics():
    x = hand_made()
    np.testing.assert_array_equal(n_hits(x), [3, 0, 0])
    np.testing.assert_array_equal(n_faint(x), [2, 1, 0])
    np.testing.assert_array_equal(n_faint(x, decades=2), [2, 2, 0])
    assert zero_fraction(x) == (3 * 128 - 7) / (3 * 128)
    np.testing.assert_array_equal(empty(x), [False, True, True])
    np.testing.assert_allclose(np.sort(hit_spectrum(x)), np.sort(np.log10([100.0, 0.9, 10.0])))
    np.testing.assert_array_equal(n_hits(torch.as_tensor(x)), n_hits(x.reshape(3, -1)))  # tensors, flat cells
    np.testing.assert_array_equal(n_hits(x, threshold=1.0), [2, 0, 0])
    spec = cell_spectrum(x, width=0.2)
    edges = spectrum_edges(width=0.2, top=4.5)
    assert spec.shape == (3 * 128,) and np.diff(edges) == pytest.approx(0.2)
    assert edges[1] == pytest.approx(np.log10(0.9)) and edges[-1] >= 4.5
    below = np.histogram(spec, edges)[0][0]
    assert below == 3 * 128 - 3  # zero, faint and negative cells share the first bin
    assert empty_fraction_error(0, 10, 5, 10) == pytest.approx(np.sqrt(0.25 / 10))


def test_entry_on_hand_made_responses():
    real = np.zeros((10, 8, 16))
    real[:, 3, 7] = 5.0
    real[:, 3, 8] = 2.0
    fake = real.copy()
    fake[:4] = 0.3  # four responses of faint cells only
    r = sparsity_metrics({CELLS: cells(real)}, {CELLS: cells(fake)}, None)
    assert r["n_hits_mean_real"] == 2.0 and r["n_hits_mean_fake"] == pytest.approx(1.2)
    assert r["empty_fraction_real"] == 0.0 and r["empty_fraction_fake"] == pytest.approx(0.4)
    assert r["n_faint_mean_real"] == 0.0 and r["n_faint_mean_fake"] == pytest.approx(0.4 * 128)
    assert r["zero_fraction_real"] == pytest.approx(126 / 128)
    assert r["zero_fraction_fake"] == pytest.approx(0.6 * 126 / 128)
    perm = np.random.default_rng(0).permutation(10)  # the entry's split: A = perm[:5], B = perm[5:]
    k_fake = int((perm[5:] < 4).sum())
    assert r["empty_fraction_diff"] == pytest.approx(k_fake / 5) and r["empty_fraction_diff_floor"] == 0.0
    assert r["empty_fraction_err"] == pytest.approx(empty_fraction_error(0, 5, k_fake, 5))
    assert r["n_hits_w1"] == pytest.approx(2 * k_fake / 5) and r["n_hits_w1_floor"] == 0.0
    assert "n_hits_chi2" not in r  # no conditions, no profile
    with pytest.raises(ValueError, match="row by row"):
        sparsity_metrics({CELLS: cells(real)}, {CELLS: cells(fake[:9])}, None)


@pytest.fixture(scope="module")
def sim():
    ev = simulate_tpc(1000, np.random.default_rng(0))
    return ev.images.astype(np.float64), ev.profile_variables()


def test_distances_vanish_for_identical_responses(sim):
    x, cond = sim
    d = sparsity_distances(x, cond, x.copy(), cond)
    assert all(d[k] == 0.0 for k in DISTANCES + ("empty_fraction_diff",))
    r = sparsity_metrics({CELLS: cells(x)}, {CELLS: cells(x)}, cond)  # a copy of the real events
    assert all(r[k] == r[f"{k}_floor"] for k in DISTANCES)  # scores exactly its floor
    assert r["n_faint_mean_real"] == 0.0 and r["empty_fraction_real"] == 0.0  # zero-suppressed at 0.9
    assert 0 < r["n_hits_w1_floor"] < 1 and 0 < r["spectrum_w1_floor"] < 0.05


def halves_chi2(x, y, cond, seed=0):
    """Five-moment chi2 of half A of x against the other half's rows of y (the entry's split)."""
    n = len(x)
    perm = np.random.default_rng(seed).permutation(n)
    ia, ib = perm[: n // 2], perm[n // 2 :]
    rows = lambda d, i: {k: np.asarray(v)[i] for k, v in d.items()}
    return tpc_chi2(rows(tpc_properties(x), ia), rows(tpc_properties(y), ib), rows(cond, ia),
                    cond_fake=rows(cond, ib))["chi2"]


def test_halo_over_threshold_seen_by_sparsity_not_by_chi2(sim):
    # The same events with the zero suppression at half the level and twice the gain: the faint
    # charge around each cluster (0.45 to 0.9) becomes hits of 0.9 to 1.8, as a smooth model's halo
    # would; the moments, gain invariant, move only by that faint charge.
    x, cond = sim
    halo = 2.0 * simulate_tpc(1000, np.random.default_rng(0), threshold=0.45).images.astype(np.float64)
    assert ((x > 0) <= (halo > 0)).all()  # the same events: every hit is still a hit
    floor_chi2, halo_chi2 = halves_chi2(x, x, cond), halves_chi2(x, halo, cond)
    assert halo_chi2 < 1.15 * floor_chi2  # the profile chi2 stays at its floor
    r = sparsity_metrics({CELLS: cells(x)}, {CELLS: cells(halo)}, cond)
    assert r["n_hits_mean_fake"] > r["n_hits_mean_real"] + 2
    for key, factor in (("n_hits_w1", 5), ("n_hits_chi2", 3), ("spectrum_w1", 8), ("spectrum_chi2", 20)):
        assert r[key] > factor * r[f"{key}_floor"], key


def test_faint_cells_counted_without_changing_hits(sim):
    # No zero suppression at all: the same hits, and faint cells (noise, charge below 0.9) elsewhere.
    x, cond = sim
    raw = simulate_tpc(1000, np.random.default_rng(0), threshold=0.0).images.astype(np.float64)
    r = sparsity_metrics({CELLS: cells(x)}, {CELLS: cells(raw)}, cond)
    assert r["n_faint_mean_real"] == 0.0 and r["n_faint_mean_fake"] > 5
    assert r["zero_fraction_real"] > 0.8 and r["zero_fraction_fake"] < r["zero_fraction_real"]
    assert all(r[k] == r[f"{k}_floor"] for k in DISTANCES)  # hits, their spectrum: unchanged


@pytest.mark.skipif(not REAL_FILE.exists(), reason="shared TPC data absent")
def test_real_file_floor_and_a_blurred_copy():
    from scipy.ndimage import gaussian_filter

    ev = read_digits(REAL_FILE, ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate", "row", "pT"])
    ev = ev.subset(slice(0, 2000))
    x, cond = ev.images.astype(np.float64), ev.profile_variables()
    blurred = gaussian_filter(x, sigma=(0, 0.5, 0.5))  # each response blurred over pads and time
    r = sparsity_metrics({CELLS: cells(x)}, {CELLS: cells(blurred)}, cond)
    assert r["n_faint_mean_real"] == 0.0 and r["empty_fraction_real"] == 0.0
    assert 17 < r["n_hits_mean_real"] < 20  # 18.4 hits per event in the file
    assert r["n_faint_mean_fake"] > 5
    for key in DISTANCES:
        assert r[key] > 5 * r[f"{key}_floor"], key


def test_entries_of_any_metric_group_see_per_sample_values_and_the_sparsity_entry_sees_the_cells():
    """dataset=tpc with metric=toy: the datamodule's (N, 128) ``cells`` reach only the entry that asks."""
    from hydra.utils import instantiate

    from conftest import compose
    from gentwin.domains.tpc.datamodule import TPCDataModule
    from gentwin.training.evaluate import run_metrics

    rng = np.random.default_rng(0)
    a, b = simulate_tpc(300, rng), simulate_tpc(300, rng)
    props = TPCDataModule.properties(None, a.images), TPCDataModule.properties(None, b.images)
    assert props[0][CELLS].shape == (300, 128)
    toy = {k: instantiate(v) for k, v in compose(["dataset=tpc", "metric=toy"]).metric.entries.items()}
    out = run_metrics(toy, *props, None)  # raised "properties have different lengths" with the cells
    assert out and all(np.isfinite(v) or np.isnan(v) for v in out.values())
    sparse = {"sparsity": instantiate(compose(["dataset=tpc"]).metric.entries.sparsity)}
    got = run_metrics(sparse, *props, None)
    assert got["sparsity/n_hits_mean_real"] == pytest.approx(n_hits(a.images).mean())
