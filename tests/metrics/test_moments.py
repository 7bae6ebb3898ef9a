import numpy as np
import pytest

from gentwin.metrics.moments import format_moment_table, moment_errors, moment_values, moments, stack_properties


def test_moments_by_hand():
    # columns (1, 3, 5) and (2, 6, 4): means 3 and 4, population variances 8/3, covariance 4/3
    m = moments(np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 4.0]]))
    np.testing.assert_allclose(m["mean"], [3.0, 4.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(m["var"], [8 / 3, 8 / 3], rtol=1e-15)
    np.testing.assert_allclose(m["std"], np.sqrt([8 / 3, 8 / 3]), rtol=1e-15)
    np.testing.assert_allclose(m["cov"], [[8 / 3, 4 / 3], [4 / 3, 8 / 3]], rtol=1e-15)


def test_moments_of_1d_input_are_population_moments():
    m = moments(np.array([0.0, 2.0]))
    assert m["cov"].shape == (1, 1)
    assert m["mean"][0] == 1.0 and m["var"][0] == 1.0 and m["std"][0] == 1.0 and m["cov"][0, 0] == 1.0


def test_stack_properties_orders_columns_and_checks_lengths():
    x = stack_properties({"a": [1, 2], "b": [3, 4]}, ["b", "a"])
    np.testing.assert_array_equal(x, [[3.0, 1.0], [4.0, 2.0]])
    with pytest.raises(ValueError):
        stack_properties({"a": [1, 2], "b": [3]})
    with pytest.raises(KeyError):
        stack_properties({"a": [1, 2]}, ["c"])


def test_moment_values_by_hand():
    real = {"x0": np.array([0.0, 2.0]), "x1": np.array([0.0, 2.0])}
    fake = {"x0": np.array([1.0, 5.0, 1.0, 5.0]), "x1": np.array([5.0, 1.0, 5.0, 1.0])}
    v = moment_values(real, fake)
    assert v == {
        "x0_mean_real": 1.0, "x0_std_real": 1.0, "x0_var_real": 1.0,
        "x1_mean_real": 1.0, "x1_std_real": 1.0, "x1_var_real": 1.0,
        "cov_x0_x1_real": 1.0,
        "x0_mean_fake": 3.0, "x0_std_fake": 2.0, "x0_var_fake": 4.0,
        "x1_mean_fake": 3.0, "x1_std_fake": 2.0, "x1_var_fake": 4.0,
        "cov_x0_x1_fake": -4.0,
    }  # fmt: skip
    assert all(type(val) is float for val in v.values())


def test_moment_errors_by_hand():
    real = {"x0": np.array([0.0, 2.0]), "x1": np.array([0.0, 2.0])}
    fake = {"x0": np.array([1.0, 5.0]), "x1": np.array([5.0, 1.0])}
    e = moment_errors(real, fake)
    # mean shift 2 real stds, std doubled, covariance 1 -> -4 in units of std_x0 * std_x1 = 1
    assert e == {"x0_mean_err": 2.0, "x0_std_rel_err": 1.0, "x1_mean_err": 2.0, "x1_std_rel_err": 1.0,
                 "cov_x0_x1_err": -5.0, "max_abs_err": 2.0}  # fmt: skip
    # the errors are in units of the real std: rescaling both samples leaves them unchanged
    scaled = moment_errors({k: 10 * v for k, v in real.items()}, {k: 10 * v for k, v in fake.items()})
    assert scaled == pytest.approx(e, rel=1e-12)


def test_moment_errors_fall_back_to_absolute_when_real_std_is_zero():
    e = moment_errors({"x0": np.ones(3)}, {"x0": np.array([1.0, 3.0])})
    assert e == {"x0_mean_err": 1.0, "x0_std_rel_err": 1.0, "max_abs_err": 1.0}
    e = moment_errors({"x0": np.ones(3), "x1": np.zeros(3)}, {"x0": np.array([0.0, 2.0]), "x1": np.array([0.0, 4.0])})
    assert e["cov_x0_x1_err"] == 2.0  # raw covariance difference: (-1 * -2 + 1 * 2) / 2


def test_max_abs_err_is_the_worst_mean_or_std_error():
    real = {"x0": np.array([0.0, 2.0]), "x1": np.array([0.0, 2.0])}
    e = moment_errors(real, {"x0": np.array([0.0, 2.0]), "x1": np.array([0.1, 1.7])})
    assert e["max_abs_err"] == pytest.approx(0.2)  # x1 std 0.8 vs 1: -0.2; mean shift -0.1


def test_moment_entries_need_every_real_property_in_fake():
    with pytest.raises(KeyError):
        moment_errors({"x0": np.ones(3), "x1": np.ones(3)}, {"x0": np.ones(3)})


def test_format_moment_table_gives_mean_errors_in_units_of_the_real_sigma():
    # Calvo Ordoñez's Figure 23 case: real mean 1 and std 0, generated mean 1.077085: no sigma, so absolute
    table = format_moment_table(
        {"x": np.ones(4), "y": np.ones(4)}, {"x": np.full(3, 1.077085), "y": np.ones(3)}, "400 epochs"
    )
    lines = table.splitlines()
    assert lines[0] == "400 epochs"
    assert lines[1].split() == ["x", "y"]
    assert lines[2].split() == ["real", "generated", "error"] * 2
    assert lines[3].split() == ["mean", "1.000000", "1.077085", "+0.077085", "abs", "1.000000", "1.000000",
                                "+0.000000", "abs"]
    assert lines[4].split()[:4] == ["std", "0.000000", "0.000000", "+0.000000"]
    assert lines[5].split()[0] == "variance"
    assert lines[6].split() == ["covariance(x,y)", "0.000000", "0.000000", "+0.000000", "abs"]
    assert lines[7].startswith("error: mean in units of the real σ") and len(lines) == 8
    # A mean near 0 with sigma 2: generated 0.1 higher is +0.05 sigma (a relative error would explode)
    x = np.array([-2.0, 2.0])
    table = format_moment_table({"x": x, "y": x}, {"x": x + 0.1, "y": 2 * x})
    mean, std, _, cov = (line.split() for line in table.splitlines()[2:6])
    assert mean[3] == "+0.050σ" and std[3] == "+0.00%" and std[6] == "+100.00%"
    assert cov[1:] == ["4.000000", "8.000000", "+1.000σσ"]
