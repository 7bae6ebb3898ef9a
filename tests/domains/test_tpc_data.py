import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import EPS32
from gentwin.domains.tpc.properties import tpc_properties
from gentwin.domains.tpc.reader import CONDITION_NAMES, read_digits
from gentwin.domains.tpc.simulator import simulate_tpc
from gentwin.domains.tpc.transforms import LogScale, log_scale, log_unscale

TPC_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "tpc"
REAL_FILE = TPC_DIR / "digits_v4plus_shortFixedPt.dat"
V4PLUS = ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate", "row", "pT"]
NAMES = ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate"]

# Event 1: int(pad)=30, int(drift)=40 -> image[ipad - 27, itime - 33]; (36, 40) is 3 pads too far.
# Event 2: int(pad)=32, int(drift)=123; all hits inside.
DIGITS = """params: -1.5 -29.25 40.75 30.5
  30  40 3.5e+00  31  33 1.0e+00  29  48 2.5e+00  36  40 7.0e+00
params:  2.0 10.0 123.25 32.875
  32 123 6.0e+01  33 124 2.0e+01
"""


def write(tmp_path, text, name="digits.dat"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reader_places_hits_and_counts_out_of_window(tmp_path):
    with pytest.warns(UserWarning, match="1 hits in 1 events"):
        ev = read_digits(write(tmp_path, DIGITS), NAMES)
    assert ev.images.shape == (2, 8, 16) and ev.images.dtype == np.float32
    assert ev.names == tuple(NAMES)
    np.testing.assert_allclose(ev.features[1], [2.0, 10.0, 123.25, 32.875])
    expected = np.zeros((2, 8, 16), dtype=np.float32)
    expected[0, 3, 7] = 3.5  # centre cell: ipad = int(pad), itime = int(drift)
    expected[0, 4, 0] = 1.0  # earliest time bucket of the window
    expected[0, 2, 15] = 2.5  # latest time bucket of the window
    expected[1, 3, 7] = 60.0
    expected[1, 4, 8] = 20.0
    np.testing.assert_array_equal(ev.images, expected)
    assert (ev.n_out_of_window_hits, ev.n_out_of_window_events, ev.n_duplicate_hits) == (1, 1, 0)
    var = ev.profile_variables()
    np.testing.assert_allclose(var["drift_length_frac"], [0.75, 0.25])
    np.testing.assert_allclose(var["pad_coordinate_frac"], [0.5, 0.875])
    c = ev.conditions(normalize=False)
    assert c.shape == (2, len(CONDITION_NAMES))
    np.testing.assert_allclose(c[0], [-1.5, -29.25, 40.75, 0.75, 0.5])
    np.testing.assert_allclose(ev.conditions()[0, :3], [-1.5 / 20, -29.25 / 60, (40.75 - 162.5) / 127.5])


def test_reader_any_number_of_features_and_windows(tmp_path):
    text = "params: 0.0 0.0 40.5 30.5 7 9\n  30 40 1.0\n"
    ev = read_digits(write(tmp_path, text), ["a", "b", "t", "p", "row", "extra"], (-1, 1), (0, 2), "p", "t")
    assert ev.images.shape == (1, 2, 2) and ev.images[0, 1, 0] == 1.0
    np.testing.assert_array_equal(ev.column("extra"), [9.0])


@pytest.mark.parametrize(
    "text, line, match",
    [
        ("params: 0 0 40 30\n 30 40 abc\n", 2, "malformed hit"),
        ("params: 0 0 40 30\n 30 40\n", 2, "triples"),
        ("params: 0 0 40 30\n 30.5 40 1.0\n", 2, "non-integer"),
        ("params: 0 0 40 30\n 30 40 1.0\nparams: 0 x 40 30\n 30 40 1\n", 3, "malformed feature"),
        ("params: 0 0 40 30\n 30 40 1.0\n 30 40 1.0\n 30 40 1.0\n", 3, "params:"),
        ("params: 0 0 40 30\n 30 40 1.0\nparams: 0 0 40 30\n 30 40 1.0 31 41 nan\n", 4, "non-finite hit"),
        ("params: 0 0 40 30\n 30 40 1.0\nparams: 0 inf 40 30\n 30 40 1.0\n", 3, "non-finite feature"),
        ("params: 0 0 40 30\n 30 40 1.0\nparams: 0 0 40 30\n", 3, "ends with a params line"),
        ("params: 0 0 40 30\n 30 40 1.0\nparams: 0 0 40 30\n 30 40 1.17", 4, "ends inside this line, with no "
         "newline after it: is it cut short"),  # of 1.171e+00: a number that still parses
        ("params: 0 0 40 30\n 30 40 1.0\nparams: 0 0 40 30\n 30 40 1.0 31 40 -2.5\n", 4, r"negative amplitude -2.5 "),
    ],
)
def test_reader_malformed_line_names_file_and_line(tmp_path, text, line, match):
    path = write(tmp_path, text, "bad.dat")
    with pytest.raises(ValueError, match=match) as err:
        read_digits(path, NAMES)
    assert f"bad.dat:{line}:" in str(err.value)


def test_reader_feature_count_mismatch(tmp_path):
    path = write(tmp_path, "params: 0 0 40 30\n 30 40 1.0\nparams: 0 0 40 30 23\n 30 40 1.0\n", "short.dat")
    with pytest.raises(ValueError, match=r"short\.dat:3: expected 4 features .* found 5"):
        read_digits(path, NAMES)
    with pytest.raises(ValueError, match="pad_coordinate"):
        read_digits(path, ["a", "b", "drift_length", "d"])


@pytest.mark.skipif(not REAL_FILE.exists(), reason="shared TPC data absent")
def test_reader_real_file():
    ev = read_digits(REAL_FILE, V4PLUS)
    assert ev.images.shape == (5000, 8, 16) and ev.features.shape == (5000, 6)
    assert ev.n_out_of_window_hits == 0 and ev.n_duplicate_hits == 0
    assert int((ev.images > 0).sum()) == 91977  # every hit of the file (README)
    train, test = ev.split()
    assert (len(train), len(test)) == (3750, 1250)
    with pytest.raises(ValueError, match="expected 4 features"):
        read_digits(REAL_FILE, NAMES)


def test_simulator_deterministic_per_seed():
    a = simulate_tpc(200, np.random.default_rng(7))
    b = simulate_tpc(200, np.random.default_rng(7))
    c = simulate_tpc(200, np.random.default_rng(8))
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.features, b.features)
    assert not np.array_equal(a.images, c.images)
    assert a.images.shape == (200, 8, 16) and a.names == tuple(NAMES)
    assert (a.images >= 0).all() and ((a.images == 0) | (a.images >= 0.9)).all()  # zero suppression


def _props(seed, **ranges):
    ev = simulate_tpc(1500, np.random.default_rng(seed), **ranges)
    return tpc_properties(ev.images)


def test_simulator_longer_segments_give_more_charge():
    flat = _props(1, dip_angle_range=(0, 0), crossing_angle_range=(0, 0))
    dipped = _props(2, dip_angle_range=(55, 55), crossing_angle_range=(0, 0))
    crossed = _props(3, dip_angle_range=(0, 0), crossing_angle_range=(20, 20))
    assert np.median(dipped["Sum"]) > 1.4 * np.median(flat["Sum"])  # 1 / cos(55 deg) = 1.74
    assert np.median(crossed["Sum"]) > 1.02 * np.median(flat["Sum"])  # 1 / cos(20 deg) = 1.06
    assert np.mean(dipped["Sigma1^2"]) > np.mean(flat["Sigma1^2"]) + 0.5  # long along the drift
    assert np.mean(crossed["Sigma0^2"]) > np.mean(flat["Sigma0^2"]) + 0.03  # long across pads


def test_simulator_longer_drift_gives_wider_responses():
    near = _props(4, drift_length_range=(40, 40))
    far = _props(5, drift_length_range=(280, 280))
    assert np.mean(far["Sigma0^2"]) > np.mean(near["Sigma0^2"]) + 0.1
    assert np.mean(far["Sigma1^2"]) > np.mean(near["Sigma1^2"]) + 0.3


def test_simulator_counts_out_of_window_hits():
    ev = simulate_tpc(300, np.random.default_rng(0), pad_window=(-1, 1), time_window=(-2, 2))
    assert ev.images.shape == (300, 2, 4)
    assert ev.n_out_of_window_hits > ev.n_out_of_window_events > 100


def test_log_scale_round_trip():
    x = np.array([0.0, 0.9, 1.0, 10.0, 11650.0])
    np.testing.assert_allclose(log_scale(x), np.log10(1 + x), rtol=1e-14)
    assert log_scale(np.array(1.0)) == pytest.approx(math.log10(2))
    np.testing.assert_allclose(log_unscale(log_scale(x)), x, rtol=1e-12, atol=1e-12)
    scaler = LogScale()
    xt = torch.tensor(x, dtype=torch.float64)
    np.testing.assert_allclose(scaler(xt).numpy(), np.log10(1 + x), rtol=1e-14)
    np.testing.assert_allclose(scaler.inverse(scaler(xt)).numpy(), x, rtol=1e-12, atol=1e-12)
    x32 = torch.rand(4, 8, 16, generator=torch.Generator().manual_seed(0)) * 1000
    # Float32 there and back: a few eps of y = log10(1 + x) <= 3, which the power turns into ln(10) y times that
    # relative to x, plus an eps of 1 + x (measured: 1.15 eps x (ln(10) y x + 1), on AVX2 and AVX-512 kernels).
    k, y_max = 8, math.log10(1 + 1000)
    np.testing.assert_allclose(scaler.inverse(scaler(x32)).numpy(), x32.numpy(), rtol=k * EPS32 * math.log(10) * y_max,
                               atol=k * EPS32)


def test_properties_hand_computed():
    x = np.zeros((3, 8, 16))
    x[0, 2, 5] = 4.0  # a single cell
    x[1, 1, 3], x[1, 3, 7] = 1.0, 3.0  # weights 1/4, 3/4 at (1, 3) and (3, 7)
    p = tpc_properties(x, c=None)
    np.testing.assert_allclose(p["Mean0"][:2], [2.0, 2.5])
    np.testing.assert_allclose(p["Mean1"][:2], [5.0, 6.0])
    np.testing.assert_allclose(p["Sigma0^2"][:2], [0.0, 0.75], atol=1e-12)
    np.testing.assert_allclose(p["Sigma1^2"][:2], [0.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(p["Cov01"][:2], [0.0, 1.5], atol=1e-12)
    np.testing.assert_allclose(p["Sum"], [4.0, 4.0, 0.0])
    assert all(np.isnan(p[k][2]) for k in ("Mean0", "Mean1", "Sigma0^2", "Sigma1^2", "Cov01"))
