"""Flow matching (``gentwin.models.flow_matching``) on known answers: the solvers' orders on a flow known
in closed form, the ODE log-density of Gaussian and linear flows, the OT pairing, the velocity nets,
and ``sample ... steps=N``."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from conftest import compose
from gentwin.models.flow_matching import FlowMatching, fixed_step, ode_log_prob
from gentwin.nets.velocity import VelocityMLP, VelocityUNet


def gaussian_velocity(mu: torch.Tensor, s: torch.Tensor):
    """The marginal velocity of straight paths from N(0, I) to N(mu, diag(s^2)), the field flow matching
    learns for such data: x_t ~ N(t mu, sigma_t^2), sigma_t^2 = (1 - t)^2 + t^2 s^2, and
    v(x, t) = mu + (t s^2 - (1 - t)) / sigma_t^2 (x - t mu). Its flow maps z to mu + s z at t = 1."""
    def v(x, t):
        t = torch.as_tensor(t, dtype=x.dtype)
        var = (1 - t) ** 2 + t**2 * s**2
        return mu + (t * s**2 - (1 - t)) / var * (x - t * mu)
    return v


@pytest.mark.parametrize("solver, order", [("euler", 1), ("midpoint", 2), ("rk4", 4)])
def test_fixed_step_solvers_converge_at_their_order(solver, order):
    # dx/dt = x cos(t): x(1) = x(0) exp(sin 1). Halving h divides the global error by 2^order.
    x0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    exact = x0 * math.exp(math.sin(1.0))
    errors = [(fixed_step(lambda x, t: x * math.cos(t), x0, n, solver) - exact).abs().max().item() for n in (8, 16, 32)]
    for coarse, fine in itertools.pairwise(errors):
        assert 2**order * 0.8 < coarse / fine < 2**order * 1.25, errors


def test_rk4_on_the_gaussian_velocity_gives_exact_samples():
    mu, s = torch.tensor([1.5, -2.0], dtype=torch.float64), torch.tensor([0.3, 2.0], dtype=torch.float64)
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = fixed_step(gaussian_velocity(mu, s), z, 20, "rk4")
    assert (x - (mu + s * z)).abs().max() < 1e-5
    euler = fixed_step(gaussian_velocity(mu, s), z, 20, "euler")
    assert (euler - (mu + s * z)).abs().max() > 1e-3  # the first-order solver is not


@pytest.mark.parametrize("exact", [True, False])
def test_ode_log_prob_of_the_gaussian_flow_is_the_gaussian_density(exact):
    # Diagonal Jacobian: Hutchinson's estimate with Rademacher noise is exact too. In float64: the solver's
    # rtol/atol of 1e-7 are below float32 rounding (1.2e-7), where its step control would chase noise.
    mu = torch.tensor([1.5, -2.0, 0.0], dtype=torch.float64)
    s = torch.tensor([0.3, 2.0, 1.0], dtype=torch.float64)
    x = mu + s * torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    want = torch.distributions.Normal(mu, s).log_prob(x).sum(1)
    got = ode_log_prob(gaussian_velocity(mu, s), x, exact=exact, rtol=1e-7, atol=1e-7)
    assert (got - want).abs().max() < 1e-4


def test_ode_log_prob_of_a_linear_flow_has_its_log_det():
    # v = A x: x(1) = expm(A) x(0), log p1(x1) = log N(expm(-A) x1) - tr(A). Hutchinson is unbiased:
    # over 4,000 samples its mean error is about 4 standard errors within 0.
    g = torch.Generator().manual_seed(2)
    a = 0.5 * torch.randn(4, 4, generator=g, dtype=torch.float64)
    x1 = torch.randn(4000, 4, generator=g, dtype=torch.float64)
    x0 = x1 @ torch.linalg.matrix_exp(-a).T
    want = -0.5 * x0.pow(2).sum(1) - 2 * math.log(2 * math.pi) - torch.trace(a)
    exact = ode_log_prob(lambda x, t: x @ a.T, x1, exact=True, rtol=1e-8, atol=1e-8)
    assert (exact - want).abs().max() < 1e-6
    est = ode_log_prob(lambda x, t: x @ a.T, x1, exact=False, rtol=1e-8, atol=1e-8, generator=g)
    err = est - want
    assert not torch.allclose(est, want, atol=1e-3)  # a per-sample estimate, not the exact value
    assert err.mean().abs() < 4 * err.std() / math.sqrt(len(err))


def model(shape=(2,), cond_dim=0, **kwargs):
    return FlowMatching(lambda in_shape, cond_dim: VelocityMLP(in_shape, cond_dim, hidden=[16]),
                        shape=shape, cond_dim=cond_dim, **kwargs)


def test_log_prob_of_the_model_uses_the_exact_trace_up_to_its_limit_then_an_estimate():
    torch.manual_seed(0)
    m = model(shape=(3,), exact_trace_max_dim=3).eval()
    x = torch.randn(8, 3)
    first, again = m.log_prob(x), m.log_prob(x)
    assert first.shape == (8,) and torch.allclose(first, again)  # exact: no noise
    m.exact_trace_max_dim = 2
    assert not torch.allclose(m.log_prob(x), first)  # Hutchinson: a random estimate


def test_ot_pairing_is_the_batch_optimal_assignment():
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(6, 2, generator=g), torch.randn(6, 2, generator=g)
    paired = model(ot=True).pair(x0, x1)
    assert sorted(map(tuple, paired.tolist())) == sorted(map(tuple, x0.tolist()))  # a permutation
    best = min((x0[list(p)] - x1).pow(2).sum().item() for p in itertools.permutations(range(6)))
    assert (paired - x1).pow(2).sum().item() == pytest.approx(best, rel=1e-6)


def test_training_lowers_the_loss_and_ema_weights_sample():
    torch.manual_seed(0)
    m = model(ema=0.9, steps=4)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    x = torch.randn(256, 2) * 0.1 + torch.tensor([2.0, -1.0])
    first = m.loss(x).item()
    for _ in range(200):
        loss = m.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        m.velocity_ema.update_parameters(m.velocity)
    assert loss.item() < 0.5 * first
    s = m.export_module()
    assert s.velocity is m.velocity_ema.module
    mean = m.sample(2000).mean(0)
    assert torch.allclose(mean, torch.tensor([2.0, -1.0]), atol=0.15)


def test_set_sampling_changes_the_export_module_and_refuses_bad_values():
    m = model()
    assert m.export_module().sequential_passes == 20 * 2  # defaults: 20 midpoint steps
    m.set_sampling(steps=5, solver="rk4")
    assert m.export_module().sequential_passes == 20
    with pytest.raises(ValueError, match="model.solver must be one of euler, midpoint, rk4"):
        m.set_sampling(solver="heun")
    with pytest.raises(ValueError, match="model.steps must be an integer >= 1"):
        m.set_sampling(steps=0)


@pytest.mark.parametrize("shape, cond_dim", [((1, 7, 7), 0), ((3, 8, 12), 2), ((1, 28, 28), 0)])
def test_unet_keeps_the_image_shape(shape, cond_dim):
    net = VelocityUNet(shape, cond_dim, hidden=[8, 16, 16])
    x = torch.randn(2, *shape)
    out = net(x, torch.rand(2), torch.randn(2, cond_dim) if cond_dim else None)
    assert out.shape == x.shape


def test_unet_refuses_vectors():
    with pytest.raises(ValueError, match=r"needs images \(C, H, W\), got \(2,\)"):
        VelocityUNet((2,))


def test_image_datasets_get_the_unet_and_vectors_the_mlp():
    assert compose(["model=flow_matching", "dataset=digits"]).model.velocity._target_.endswith("VelocityUNet")
    assert compose(["model=flow_matching", "dataset=mnist"]).model.velocity._target_.endswith("VelocityUNet")
    assert compose(["model=flow_matching", "dataset=moons"]).model.velocity._target_.endswith("VelocityMLP")


def test_sample_steps_changes_the_solver_of_a_trained_model(tmp_path, capsys):
    from gentwin.commands.sample import main
    from test_export import make_model, save_checkpoint

    ckpt = save_checkpoint(make_model("flow_matching", 0), tmp_path / "fm.ckpt")
    outs = {}
    for steps in (1, 50):
        assert main([str(ckpt), f"out={tmp_path}/s{steps}.npz", "n=200", f"steps={steps}", "solver=rk4"]) == 0
        outs[steps] = np.load(tmp_path / f"s{steps}.npz")["x"]
    assert not np.allclose(outs[1], outs[50], atol=1e-3)  # another solution of the same noise
    capsys.readouterr()
    assert main([str(ckpt), f"out={tmp_path}/bad.npz", "n=5", "solver=heun"]) == 2
    assert "model.solver must be one of" in capsys.readouterr().err and not (tmp_path / "bad.npz").exists()


def test_sample_steps_is_refused_for_one_pass_families(tmp_path, capsys):
    from gentwin.commands.sample import main
    from test_export import make_model, save_checkpoint

    ckpt = save_checkpoint(make_model("wgan_gp", 0), tmp_path / "gan.ckpt")
    assert main([str(ckpt), f"out={tmp_path}/s.npz", "n=5", "steps=4"]) == 2
    assert "GAN samples in one pass: it has no steps or solver" in capsys.readouterr().err
    assert not (tmp_path / "s.npz").exists()


def test_tpc_zero_suppression_zeroes_cells_below_the_readout_threshold():
    from gentwin.domains.tpc.nets import ZeroSuppression
    from gentwin.domains.tpc.transforms import LogScale

    amplitudes = torch.tensor([[0.0, 0.05, 0.89, 0.9, 1.0, 250.0]])
    y = ZeroSuppression(0.9)(LogScale()(amplitudes))
    assert torch.allclose(LogScale().inverse(y), torch.tensor([[0.0, 0.0, 0.0, 0.9, 1.0, 250.0]]), rtol=1e-5, atol=1e-6)


def test_resnet_velocity_starts_as_the_identity_in_time_and_conditions_and_learns_them():
    from gentwin.nets.velocity import VelocityResNet

    torch.manual_seed(0)
    net = VelocityResNet((8, 16), cond_dim=5, hidden=[32, 32])
    x, c = torch.randn(4, 8, 16), torch.randn(4, 5)
    out = net(x, torch.rand(4), c)
    assert out.shape == x.shape
    # FiLM initialised at zero: before training neither t nor c changes the output
    assert torch.equal(out, net(x, torch.rand(4), torch.randn(4, 5)))
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(100):  # the target depends on c only: reachable through the FiLM layers alone
        loss = (net(x, torch.zeros(4), c) - c[:, :1, None].expand(4, 8, 16)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05 * c[:, 0].pow(2).mean().item()
    with pytest.raises(ValueError, match="equal widths"):
        VelocityResNet((4,), hidden=[32, 64])


def test_final_nll_averages_the_first_nll_samples_events():
    from gentwin.training.evaluate import evaluate

    torch.manual_seed(0)

    class DM:  # the few members evaluate reads
        x_raw_val = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
        c_raw_val = None

        def eval_slice(self):
            return slice(0, 50)

        def real_properties(self):
            return {}

        def floor_properties(self):
            return None

        def properties(self, x, c):
            return {}

        def conditions(self, c):
            return None

    m = model(nll_samples=7).eval()
    calls = []
    log_prob = m.log_prob
    m.log_prob = lambda x, c=None: calls.append(len(x)) or log_prob(x, c)
    metrics, _, _ = evaluate(m, DM(), {}, figures=False, seed=0)
    want = -log_prob(torch.as_tensor(DM.x_raw_val[:7])).mean().item()
    assert calls == [7] and metrics["nll"] == pytest.approx(want, rel=1e-4)
    m.nll_samples = 0  # off: no likelihood solve at all
    calls.clear()
    metrics, _, _ = evaluate(m, DM(), {}, figures=False, seed=0)
    assert calls == [] and "nll" not in metrics
    with pytest.raises(ValueError, match="model.nll_samples must be >= 0"):
        model(nll_samples=-1)


def test_dopri5_samples_as_a_reference_and_is_not_exported(tmp_path):
    from gentwin.errors import ExportError
    from gentwin.training.export import export
    from test_export import make_model, save_checkpoint

    m = make_model("flow_matching", 0, overrides=["model.steps=200", "model.solver=rk4"])
    z = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    fine = m.export_module().to_model_space(z)
    m.set_sampling(solver="dopri5")
    ref = m.export_module().to_model_space(z)
    # both within about their tolerance (1e-5, relative and absolute) of the exact solution
    assert (ref - fine).abs().max() < 1e-3 * (1 + fine.abs().max())
    assert m.export_module().adaptive and not (ref - z).abs().max() < 1e-3  # it moved the noise
    ckpt = save_checkpoint(m, tmp_path / "fm.ckpt")
    with pytest.raises(ExportError, match="chooses its steps per input"):
        export(ckpt, "onnx", tmp_path / "fm.onnx", model=m)
    assert not (tmp_path / "fm.onnx").exists()


def test_a_likelihood_solve_over_nll_max_steps_gives_nan_and_no_val_nll():
    torch.manual_seed(0)
    m = model(nll_max_steps=1000).eval()
    x = torch.randn(7, 2)
    assert torch.isfinite(m.log_prob(x)).all()
    m.nll_max_steps = 5  # an untrained field oscillates in t: its solve needs more steps than that
    assert torch.isnan(m.log_prob(x)).all()
    logged = []
    m.log = lambda name, value, **kw: logged.append(name)
    m.validation_step((x, None), 0)
    assert logged == []
    m.nll_max_steps = 1000
    m.validation_step((x, None), 0)
    assert logged == ["val/nll"]
