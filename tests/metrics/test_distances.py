import re

import numpy as np
import pytest
import torch

from gentwin.metrics.classifier import classifier, classifier_test, isotonic_calibration, roc_auc
from gentwin.metrics.distances import (
    energy_distance,
    ks_marginals,
    ks_statistic,
    multivariate,
    sliced_w1,
    w1_marginals,
    wasserstein1,
)
from gentwin.metrics.physics_distances import (
    fpd_extrapolated,
    fpd_kpd,
    frechet_distance,
    frechet_from_samples,
    kpd_median,
    mmd2_unbiased,
)


@pytest.fixture
def one_thread():
    # The classifier's tiny ops lose 10x to thread hand-offs on a busy 2-core CI box; results do not depend on it.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def cdf_integral(a, b, power):
    """Reference integral of |F_a - F_b|^power over the pooled sample, by a plain loop."""
    t = sorted(set(a) | set(b))
    total = 0.0
    for lo, hi in zip(t[:-1], t[1:], strict=True):
        fa = sum(v <= lo for v in a) / len(a)
        fb = sum(v <= lo for v in b) / len(b)
        total += abs(fa - fb) ** power * (hi - lo)
    return total


# --- 1-D: Wasserstein-1 and Kolmogorov-Smirnov ---------------------------------------------------


def test_w1_by_hand():
    # |F - G| = 1/3, 1/6, 1/6, 1/3 on [0, .5), [.5, 1), [1, 2), [2, 3)
    assert wasserstein1([0.0, 1.0, 3.0], [0.5, 2.0]) == pytest.approx(1 / 6 + 1 / 12 + 1 / 6 + 1 / 3, rel=1e-14)
    assert wasserstein1([0.5, 2.0], [0.0, 1.0, 3.0]) == pytest.approx(0.75, rel=1e-14)
    assert wasserstein1([0.0, 1.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(1.0, rel=1e-14)


def test_w1_of_point_masses():
    assert wasserstein1([0.0], [3.0]) == 3.0
    assert wasserstein1([0.0, 0.0], [1.0, 3.0]) == 2.0
    assert wasserstein1([2.0] * 5, [2.0] * 3) == 0.0


def test_w1_matches_reference_integral_on_random_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=13).tolist(), rng.normal(0.5, 2.0, size=8).tolist()
    assert wasserstein1(a, b) == pytest.approx(cdf_integral(a, b, 1), rel=1e-12)


def test_w1_of_shifted_gaussians_is_the_shift():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=20_000), rng.normal(0.7, 1.0, size=15_000)
    assert wasserstein1(a, b) == pytest.approx(0.7, abs=0.03)


def test_ks_by_hand():
    # F_a - F_b at 1, 2, 2.5, 3, 4: 1/3, 2/3, 1/6, 1/2, 0
    assert ks_statistic([1.0, 2.0, 3.0], [2.5, 4.0]) == pytest.approx(2 / 3, rel=1e-14)
    assert ks_statistic([1.0, 2.0], [2.0, 3.0]) == 0.5  # tie at 2 counted in both CDFs
    assert ks_statistic([0.0, 1.0], [5.0, 6.0, 7.0]) == 1.0
    assert ks_statistic([3.0, 1.0, 2.0], [1.0, 2.0, 3.0]) == 0.0


def test_non_finite_values_give_nan():
    a, b = np.arange(5.0), np.array([1.0, np.nan, 2.0])
    assert np.isnan(wasserstein1(a, b)) and np.isnan(ks_statistic(a, b)) and np.isnan(energy_distance(a, b))


def test_marginal_entries():
    real = {"x0": np.array([0.0, 4.0]), "x1": np.array([1.0, 1.0])}
    fake = {"x0": np.array([2.0, 6.0, 2.0, 6.0]), "x1": np.array([3.0])}
    assert w1_marginals(real, fake) == {"x0": 2.0, "x1": 2.0}
    # x0 divided by its real std 2; x1 has std 0 and stays in data units
    assert w1_marginals(real, fake, scale="std") == {"x0": 1.0, "x1": 2.0}
    assert ks_marginals(real, fake) == {"x0": 0.5, "x1": 1.0}
    with pytest.raises(ValueError):
        w1_marginals(real, fake, scale="iqr")


# --- multivariate: energy distance and sliced W1 -------------------------------------------------


def test_energy_distance_1d_by_hand():
    # 2 E|X-Y| - E|X-X'| - E|Y-Y'| = 2 * 7.5/6 - 12/9 - 3/4 = 5/12 = 2 * integral (F - G)^2
    assert energy_distance([0.0, 1.0, 3.0], [0.5, 2.0]) == pytest.approx(5 / 12, rel=1e-14)


def test_energy_distance_1d_equals_twice_the_squared_cdf_integral():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=17).tolist(), rng.exponential(size=11).tolist()
    assert energy_distance(a, b) == pytest.approx(2 * cdf_integral(a, b, 2), rel=1e-12)


def test_energy_distance_of_identical_samples_and_point_masses():
    x = np.random.default_rng(3).normal(size=(300, 3))
    assert energy_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert energy_distance([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(10.0, rel=1e-14)


def test_energy_distance_subsamples_deterministically():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(500, 2)), rng.normal(1.0, 1.0, size=(400, 2))
    full = energy_distance(x, y)
    sub = energy_distance(x, y, max_samples=200, seed=7)
    assert sub == energy_distance(x, y, max_samples=200, seed=7)
    assert sub != energy_distance(x, y, max_samples=200, seed=8)
    assert sub == pytest.approx(full, rel=0.2)


def test_sliced_w1_in_1d_is_w1():
    a, b = [0.0, 1.0, 3.0], [0.5, 2.0]
    assert sliced_w1(a, b, n_projections=5) == pytest.approx(0.75, rel=1e-14)


def test_sliced_w1_of_a_translated_sample():
    # the projected translate has W1 = |theta . s| exactly; over uniform directions in 2-D, E|cos| = 2/pi
    x = np.random.default_rng(5).normal(size=(200, 2))
    shift = np.array([3.0, 4.0])
    assert sliced_w1(x, x + shift, n_projections=4000) == pytest.approx(5.0 * 2 / np.pi, rel=0.02)


def test_multivariate_entry():
    rng = np.random.default_rng(6)
    real = {"x0": rng.normal(size=300), "x1": rng.normal(size=300)}
    assert multivariate(real, real) == {"energy": pytest.approx(0.0, abs=1e-12), "sliced_w1": 0.0}
    fake = {"x0": real["x0"] + 1.0, "x1": real["x1"]}
    out = multivariate(real, fake)
    assert out["sliced_w1"] > 0.3 and out["energy"] > 0.3
    # standardized by the real std: a change of units does not change the values
    rescale = lambda d: {"x0": d["x0"], "x1": 1000.0 * d["x1"]}
    assert multivariate(rescale(real), rescale(fake)) == pytest.approx(out, rel=1e-9)


# --- Frechet and kernel distances ----------------------------------------------------------------


def test_frechet_diagonal_gaussians():
    # ||mu1 - mu2||^2 + sum_d (s1_d - s2_d)^2 with stds s = (1, 2) and (2, 3)
    d = frechet_distance(np.array([0.0, 1.0]), np.diag([1.0, 4.0]), np.array([1.0, 1.0]), np.diag([4.0, 9.0]))
    assert d == pytest.approx(1.0 + 1.0 + 1.0, rel=1e-13)
    assert frechet_distance(np.zeros(1), np.array([[4.0]]), np.ones(1), np.array([[1.0]])) == pytest.approx(2.0)


def test_frechet_non_diagonal_against_slow_reference():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    # tr (S1 S2)^1/2 = sum of the square roots of the (real, positive) eigenvalues of S1 S2
    tr_covmean = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
    reference = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-10)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-10)


def test_frechet_with_singular_covariance_is_stable():
    s = np.array([[1.0, 1.0], [1.0, 1.0]])  # rank 1
    d = frechet_distance(np.zeros(2), s, np.zeros(2), s)
    assert np.isfinite(d) and d == pytest.approx(0.0, abs=1e-7)


def test_frechet_from_samples_uses_unbiased_covariance():
    # variances (ddof=1) 2 and 0, equal means: d = 2 + 0 - 0
    assert frechet_from_samples([0.0, 2.0], [1.0, 1.0]) == pytest.approx(2.0, rel=1e-14)


def test_mmd2_unbiased_by_hand():
    # linear kernel k(a, b) = ab: off-diagonal XX 0, YY 2, mean XY (0 + 0 + 1 + 2) / 4
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    assert mmd2_unbiased(x, y, degree=1, gamma=1.0, coef0=0.0) == pytest.approx(0.0 + 2.0 - 1.5, rel=1e-14)


def test_mmd2_unbiased_cubic_against_loops():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    k = lambda a, b: (a @ b / 3 + 1.0) ** 3
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / 12
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / 20
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kpd_median_zero_for_identical_positive_for_shifted():
    x = np.random.default_rng(9).normal(size=(2000, 3))
    same, same_err = kpd_median(x, x, batch_size=400)
    shifted, shifted_err = kpd_median(x, x + np.array([1.0, 0.0, 0.0]), batch_size=400)  # 1 / max|x| ~ 0.3
    assert abs(same) < 1e-3 and same_err > 0
    assert shifted > 2e-3 and shifted > 2 * shifted_err
    assert kpd_median(x, x, num_batches=3, batch_size=100, seed=1) == kpd_median(x, x, num_batches=3, batch_size=100,
                                                                               seed=1)


def test_fpd_extrapolated_recovers_a_known_mean_shift():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))
    same, _ = fpd_extrapolated(x, y, num_batches=5)
    shifted, _ = fpd_extrapolated(x, y + [np.abs(x[:, 0]).max() * 0.5, 0], num_batches=5)
    assert same < 1e-3 and shifted == pytest.approx(0.25, rel=0.1)  # normalised mean shift 0.5: FD 0.25


def test_fpd_kpd_entry():
    rng = np.random.default_rng(10)
    real = {"x0": rng.normal(size=1000), "x1": rng.normal(size=1000)}
    same = fpd_kpd(real, real, kpd_batch_size=300)
    assert set(same) == {"fpd", "fpd_err", "kpd", "kpd_err"}
    assert abs(same["fpd"]) < 1e-3 and abs(same["kpd"]) < 1e-3
    fake = {"x0": real["x0"] + 1.0, "x1": real["x1"]}
    out = fpd_kpd(real, fake, kpd_batch_size=300)
    # features divided by the real max |x|: a mean shift of 1 / max|x0|, equal covariances
    assert out["fpd"] == pytest.approx(1.0 / np.abs(real["x0"]).max() ** 2, rel=0.1) and out["kpd"] > 1e-3
    rescale = lambda d: {"x0": 1e-3 * d["x0"], "x1": 1e3 * d["x1"]}
    assert fpd_kpd(rescale(real), rescale(fake), kpd_batch_size=300) == pytest.approx(out, rel=1e-6)



def test_fpd_kpd_leave_out_rows_with_a_non_finite_property():
    """Invalid generated leaves have NaN properties: FPD/KPD are those of the valid rows (evaluate on a leaf
    checkpoint raised LinAlgError), and NaN when fewer than two rows of a sample are finite."""
    rng = np.random.default_rng(11)
    real = {"x0": rng.normal(size=800), "x1": rng.normal(size=800)}
    fake = {"x0": rng.normal(size=800) + 0.5, "x1": rng.normal(size=800)}
    holed = {k: v.copy() for k, v in fake.items()}
    holed["x0"][::7], holed["x1"][3::11] = np.nan, np.inf
    keep = np.isfinite(holed["x0"]) & np.isfinite(holed["x1"])
    want = fpd_kpd(real, {k: v[keep] for k, v in fake.items()}, kpd_batch_size=300)
    assert fpd_kpd(real, holed, kpd_batch_size=300) == want
    assert all(np.isfinite(v) for v in want.values())
    empty = {k: np.full(800, np.nan) for k in fake}
    assert all(np.isnan(v) for v in fpd_kpd(real, empty).values())

# --- classifier two-sample test ------------------------------------------------------------------


def test_roc_auc_by_hand_with_ties():
    # pairs (pos, neg): 0.9 beats both, each 0.5 ties 0.5 (1/2) and beats 0.1 -> (2 + 1.5 + 1.5) / 6
    assert roc_auc([0.9, 0.5, 0.5], [0.5, 0.1]) == pytest.approx(5 / 6, rel=1e-14)
    assert roc_auc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert roc_auc([0.0, 1.0], [2.0, 3.0]) == 0.0
    assert roc_auc([1.0, 1.0, 1.0], [1.0, 1.0]) == 0.5


def test_isotonic_calibration_pools_adjacent_violators():
    calibrate = isotonic_calibration(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    assert np.allclose(calibrate(np.array([0.1, 0.2, 0.3, 0.4])), [0, 0.5, 0.5, 1])


def test_classifier_test_near_half_for_the_same_distribution(one_thread):
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(3000, 2)), rng.normal(size=(3000, 2))  # test AUC std ~0.013
    out = classifier_test(x, y, seed=0)
    assert out["auc"] == pytest.approx(0.5, abs=0.05) and abs(out["jsd"]) < 0.05
    assert classifier_test(x, y + [1, 0])["auc"] > 0.65


def test_classifier_test_high_for_separated_distributions(one_thread):
    # a standard normal vs a ring of radius 3.5 around its centre: separable only non-linearly
    rng = np.random.default_rng(12)
    x = rng.normal(size=(800, 2))
    phi, r = rng.uniform(0.0, 2 * np.pi, size=700), rng.normal(3.5, 0.1, size=700)
    y = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
    assert abs(x.mean(axis=0) - y.mean(axis=0)).max() < 0.2  # the means alone do not tell them apart
    state = torch.get_rng_state()
    out = classifier_test(x, y, seed=0)
    assert out["auc"] > 0.95 and out["jsd"] > 0.7
    assert torch.equal(torch.get_rng_state(), state)



def test_classifier_test_reports_its_epochs_with_an_eta_only_when_asked(one_thread, capsys, monkeypatch):
    from gentwin import progress

    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + [3, 0]  # separable: no early stop
    told = []
    classifier_test(x, y, max_epochs=4, patience=10, progress=lambda f, detail: told.append((f, detail)))
    assert [f for f, _ in told] == [0.25, 0.5, 0.75, 1.0]
    assert told[0][1].startswith("epoch 1/4  val loss ") and told[-1][1].startswith("epoch 4/4")
    out = []
    same = classifier_test(x, x[::-1], max_epochs=50, patience=1, progress=progress.Lines("classifier", every=0.0,
                                                                                             write=out.append))
    assert np.isfinite(same["auc"]) and 2 <= len(out) < 50  # the same sample: stopped early, after the 1st epoch
    assert re.fullmatch(r"classifier  +2%  epoch 1/50  val loss \S+  \d+s, ETA \d+s", out[0]), out
    assert re.fullmatch(r"classifier 100%  epoch \d+/50 \(stopped early\)  val loss \S+  \d+s, done", out[-1]), out
    classifier_test(x, y, max_epochs=2)  # a metric prints nothing by default...
    with progress.shown():  # ...nor inside a command's progress before AFTER seconds
        classifier_test(x, y, max_epochs=2)
    assert capsys.readouterr().out == ""
    monkeypatch.setattr(progress, "AFTER", 0.0)
    with progress.shown():
        classifier_test(x, y, max_epochs=2)
    assert re.search(r"^classifier  50%  epoch 1/2 .*ETA \d+s$", capsys.readouterr().out, re.M)

def test_classifier_entry(one_thread):
    rng = np.random.default_rng(13)
    real = {"x0": rng.normal(size=300)}
    fake = {"x0": rng.normal(4.0, 1.0, size=300)}
    out = classifier(real, fake)
    assert set(out) == {"auc", "jsd"} and out["auc"] > 0.95
    assert out == classifier_test(real["x0"][:, None], fake["x0"][:, None])  # the one recipe
    assert np.isnan(classifier(real, {"x0": np.full(300, np.nan)})["auc"])


def test_classifier_trains_under_inference_mode_as_in_lightning_validation(one_thread):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(400, 3)), rng.normal(size=(400, 3)) + 2.0
    with torch.inference_mode():
        assert classifier_test(x, y)["auc"] > 0.95
