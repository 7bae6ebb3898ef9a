from pathlib import Path

import numpy as np
import pytest

from gentwin.domains.tpc.metrics import CHI2_STATISTICS, PROFILE_VARIABLES, tpc_chi2, tpc_profiles
from gentwin.domains.tpc.properties import tpc_properties
from gentwin.domains.tpc.reader import read_digits
from gentwin.domains.tpc.simulator import simulate_tpc

REAL_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tpc" / "digits_v4plus_shortFixedPt.dat"
N_TERMS = 2 * len(CHI2_STATISTICS) * len(PROFILE_VARIABLES) * 19  # 950 band differences


@pytest.fixture(scope="module")
def sim():
    ev = simulate_tpc(2000, np.random.default_rng(0))
    return ev.images, ev.profile_variables()


def test_chi2_small_for_resample_large_for_shift(sim):
    x, cond = sim
    real = tpc_properties(x)
    idx = np.random.default_rng(1).integers(0, len(x), len(x))  # a resample of the same events
    same = tpc_chi2(real, tpc_properties(x[idx]), {k: v[idx] for k, v in cond.items()}, cond_fake=cond)
    shifted = tpc_chi2(real, tpc_properties(np.roll(x, 1, axis=2)), cond)  # one time bucket later
    assert same["skipped_bins"] == 0 and shifted["skipped_bins"] == 0
    assert 0 < same["chi2"] < 1.5 * N_TERMS
    assert shifted["chi2"] > 20 * N_TERMS
    assert shifted["term/Mean1/dip_angle"] > 50 * shifted["term/Mean0/dip_angle"]
    keys = {f"term/{s}/{v}" for s in CHI2_STATISTICS + ("Sum",) for v in PROFILE_VARIABLES}
    assert keys <= same.keys()
    assert same["chi2"] == pytest.approx(sum(same[f"term/{s}/{v}"] for s in CHI2_STATISTICS for v in PROFILE_VARIABLES))


def test_gain_error_only_seen_by_chi2_amp(sim):
    x, cond = sim
    real, gained = tpc_properties(x), tpc_properties(2.0 * x)
    r = tpc_chi2(real, gained, cond)
    assert r["chi2"] == pytest.approx(0.0, abs=1e-9)  # the moments are gain invariant
    assert r["chi2_amp"] > 2 * N_TERMS / 5  # over 2 per Sum band difference
    assert tpc_chi2(real, real, cond)["chi2_amp"] == 0.0


def test_chi2_recomputed_from_profiles():
    rng = np.random.default_rng(3)
    n = 400
    cond = {"v": rng.uniform(0, 1, n)}
    real = {s: rng.normal(size=n) for s in CHI2_STATISTICS + ("Sum",)}
    fake = {s: rng.normal(0.3, 1.2, size=n) for s in CHI2_STATISTICS + ("Sum",)}
    prof = tpc_profiles(real, fake, cond, variables=("v",), n_bins=4, n_bootstrap=50, seed=5)
    p = prof["v"]["Cov01"]
    np.testing.assert_allclose(p["edges"], np.linspace(cond["v"].min(), cond["v"].max(), 5))
    sel = (cond["v"] >= p["edges"][1]) & (cond["v"] < p["edges"][2])
    y = real["Cov01"][sel]
    assert p["real_n"][1] == sel.sum()
    assert p["real_mean"][1] == pytest.approx(y.mean())
    assert p["real_std"][1] == pytest.approx(y.std())
    assert p["real_mean_err"][1] == pytest.approx(y.std() / np.sqrt(len(y) - 1))
    assert p["real_std_err"][1] == pytest.approx(y.std() / np.sqrt(2 * len(y)), rel=0.4)  # Gaussian value
    assert p["real_n"].sum() == n  # the maximum falls into the last bin
    expected = 0.0
    for stat in CHI2_STATISTICS:
        q = prof["v"][stat]
        err2 = q["real_mean_err"] ** 2 + q["real_std_err"] ** 2 + q["fake_mean_err"] ** 2 + q["fake_std_err"] ** 2
        du = q["fake_mean"] + q["fake_std"] - q["real_mean"] - q["real_std"]
        dl = q["fake_mean"] - q["fake_std"] - q["real_mean"] + q["real_std"]
        expected += np.sum((du**2 + dl**2) / err2)
    r = tpc_chi2(real, fake, cond, variables=("v",), n_bins=4, n_bootstrap=50, seed=5)
    assert r["chi2"] == pytest.approx(expected)
    assert r == tpc_chi2(real, fake, cond, variables=("v",), n_bins=4, n_bootstrap=50, seed=5)


def test_empty_and_single_entry_bins_are_skipped_and_counted():
    rng = np.random.default_rng(0)
    v = np.concatenate([np.zeros(10), [1.0], np.full(10, 10.0)])  # bins of width 1 on [0, 10]
    cond = {"v": v}
    real = {s: rng.normal(size=21) for s in CHI2_STATISTICS + ("Sum",)}
    fake = {s: rng.normal(size=21) for s in CHI2_STATISTICS + ("Sum",)}
    real["Mean0"][0] = np.nan  # an image of zero amplitude
    r = tpc_chi2(real, fake, cond, variables=("v",), n_bins=10)
    assert all(np.isfinite(val) for val in r.values())
    assert r["skipped_bins"] == 5 * 8  # per statistic: bin [1, 2) holds one event, 7 bins are empty
    assert r["skipped_bins_amp"] == 6 * 8
    assert r["n_invalid_real"] == 1 and r["n_invalid_fake"] == 0
    assert r["chi2"] > 0


@pytest.mark.skipif(not REAL_FILE.exists(), reason="shared TPC data absent")
def test_real_floor_scale():
    ev = read_digits(REAL_FILE, ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate", "row", "pT"])
    train, test = ev.split(0.25, seed=0)
    other = train.subset(np.random.default_rng(0).choice(len(train), len(test), replace=False))
    r = tpc_chi2(
        tpc_properties(test.images),
        tpc_properties(other.images),
        test.profile_variables(),
        cond_fake=other.profile_variables(),
    )
    assert 0.6 * N_TERMS < r["chi2"] < 1.5 * N_TERMS  # about one per band difference (~915 quoted)
    shifted = tpc_chi2(
        tpc_properties(test.images), tpc_properties(np.roll(test.images, 1, axis=1)), test.profile_variables()
    )
    assert shifted["chi2"] > 20 * N_TERMS


def test_halves_chi2_puts_a_perfect_generator_at_its_floor_and_a_shifted_one_far_above(sim):
    from gentwin.domains.tpc.metrics import tpc_chi2_halves

    x, cond = sim
    real = tpc_properties(x)
    same = tpc_chi2_halves(real, real, cond)  # the generated event of each B row is B's real one
    assert same["chi2"] == same["chi2_floor"] and same["chi2_amp"] == same["chi2_amp_floor"]
    assert 0 < same["chi2_floor"] < 1.5 * N_TERMS  # two halves of one sample: about one per term
    shifted = tpc_chi2_halves(real, tpc_properties(np.roll(x, 1, axis=2)), cond)
    assert shifted["chi2_floor"] == same["chi2_floor"] and shifted["chi2"] > 10 * shifted["chi2_floor"]
    # the paired chi2 of identical moments is 0, far below any floor: why the halves are the comparison
    assert tpc_chi2(real, real, cond)["chi2"] == 0.0
