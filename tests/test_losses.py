"""Adversarial and VAE losses against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import assert_rounding_close
from gentwin.losses.adversarial import BCE, Cramer, LeastSquares, WassersteinGP, gradient_penalty
from gentwin.losses.vae import gaussian_kl, reconstruction_nll


def test_gradient_penalty_of_linear_critic_is_hand_computed():
    # f(x) = w.x has gradient w everywhere: penalty (|w| - 1)^2 = (5 - 1)^2 = 16 for w = (3, 4).
    w = torch.tensor([3.0, 4.0])
    x = torch.randn(64, 2)
    assert gradient_penalty(lambda x: x @ w, x).item() == pytest.approx(16.0)
    assert gradient_penalty(lambda x: x @ w, x, center=0.0).item() == pytest.approx(25.0)


def test_one_sided_gradient_penalty_ignores_gradients_flatter_than_one():
    # |w| = 0.5: two-sided (0.5 - 1)^2 = 0.25, one-sided 0; |w| = 5: both (5 - 1)^2 = 16.
    x = torch.randn(64, 2)
    flat, steep = torch.tensor([0.3, 0.4]), torch.tensor([3.0, 4.0])
    assert gradient_penalty(lambda x: x @ flat, x).item() == pytest.approx(0.25)
    assert gradient_penalty(lambda x: x @ flat, x, one_sided=True).item() == 0.0
    assert gradient_penalty(lambda x: x @ steep, x, one_sided=True).item() == pytest.approx(16.0)
    # The loss passes it on: a critic x -> x @ flat has no penalty one-sided.
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    critic = lambda x, c: x @ flat  # noqa: E731
    assert WassersteinGP(one_sided=True).critic_loss(critic, real, [fake], None)[1]["gp"].item() == 0.0
    assert WassersteinGP().critic_loss(critic, real, [fake], None)[1]["gp"].item() == pytest.approx(0.25)


def test_gradient_penalty_is_shape_agnostic_and_differentiable():
    # f(x) = a * sum(x^2) on images: grad = 2 a x, |grad| = 2 |a| |x|.
    a = torch.tensor(0.5, requires_grad=True)
    x = torch.ones(3, 1, 2, 2)  # |x| = 2 per sample
    gp = gradient_penalty(lambda x: a * (x**2).flatten(1).sum(1), x)
    assert gp.item() == pytest.approx((2 * 0.5 * 2 - 1) ** 2)
    gp.backward()
    # d/da (4a - 1)^2 = 8 (4a - 1) = 8
    assert a.grad.item() == pytest.approx(8.0)


def const_critic(value_real, value_fake):
    return lambda x, c: torch.where(x[:, :1] > 0, value_real, value_fake).squeeze(1)


def test_wasserstein_and_least_squares_losses_on_constant_critic():
    real, fake = torch.ones(4, 2), -torch.ones(4, 2)
    critic = const_critic(torch.tensor(2.0), torch.tensor(-1.0))
    loss, logs = WassersteinGP(gp_weight=0.0).critic_loss(critic, real, [fake], None)
    assert loss.item() == pytest.approx(-1.0 - 2.0)
    assert logs["d_real"].item() == 2.0 and logs["d_fake"].item() == -1.0
    assert WassersteinGP().generator_loss(critic, real, [fake], None)[0].item() == pytest.approx(1.0)
    # Calvo Ordoñez 2022 (generative ML for particle physics) eq. 3.23-3.24: (2 - 1)^2 + (-1)^2 = 2; generator (-1 -
    # 1)^2 = 4
    assert LeastSquares().critic_loss(critic, real, [fake], None)[0].item() == pytest.approx(2.0)
    assert LeastSquares().generator_loss(critic, real, [fake], None)[0].item() == pytest.approx(4.0)


def test_bce_losses_on_zero_logits_are_log2():
    critic = lambda x, c: torch.zeros(len(x))
    real = torch.randn(5, 3)
    loss_d, logs = BCE().critic_loss(critic, real, [real], None)
    assert loss_d.item() == pytest.approx(2 * math.log(2))
    assert logs["d_real"].item() == pytest.approx(0.5)
    assert BCE().generator_loss(critic, real, [real], None)[0].item() == pytest.approx(math.log(2))


def test_cramer_generator_loss_is_energy_distance_of_critic_features():
    # Identity features h(x) = x on point masses: real at 0, both fakes at d -> L_g = d + d - 0.
    critic = lambda x, c: x
    real, fake = torch.zeros(3, 2), torch.full((3, 2), 3.0)
    loss, _ = Cramer(gp_weight=0.0, critic_out=2).generator_loss(critic, real, [fake, fake], None)
    assert loss.item() == pytest.approx(2 * math.hypot(3, 3))
    loss_d, _ = Cramer(gp_weight=0.0, critic_out=2).critic_loss(critic, real, [fake, fake], None)
    # f(x) = |x - x'_g| - |x|: f(real) = |d|, f(fake) = 0 - |d| -> -(|d| + |d|)
    assert loss_d.item() == pytest.approx(-2 * math.hypot(3, 3))


def test_gaussian_kl_and_reconstruction():
    mean, log_var = torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, math.log(4.0)]])
    # KL(N(1, 4) || N(0, 1)) = 0.5 (4 + 1 - 1 - log 4); first dim contributes 0
    assert gaussian_kl(mean, log_var).item() == pytest.approx(0.5 * (4 + 1 - 1 - math.log(4)))
    x = torch.zeros(1, 2)
    assert reconstruction_nll(x, x).item() == pytest.approx(math.log(2 * math.pi))
    assert reconstruction_nll(torch.zeros(1, 2), torch.ones(1, 2), kind="bce").item() == \
        pytest.approx(2 * math.log(2))


@pytest.mark.parametrize(
    "loss", [WassersteinGP(), LeastSquares(gp_weight=1.0), BCE(gp_weight=1.0), Cramer(critic_out=3)],
    ids=["wgan_gp", "lsgan", "gan", "cramer"])
def test_joint_critic_pass_gives_the_separate_passes_values_in_one_call(loss):
    # A critic without batch statistics scores concatenated batches as it scores each: same losses,
    # logs and parameter gradients, and one call instead of one per batch (the penalty adds one).
    # In float64: the test is of the maths; the joint call sums each gradient over the batches in
    # another order, which in float32 moves entries by a few eps32 times the gradient's size (measured
    # up to 1.2 here; 2e-6 on entries of about 3 on an AVX-512 Xeon, issue 23).
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4 + 2, 8), torch.nn.ELU(), torch.nn.Linear(8, loss.critic_out)).double()
    calls = []

    def critic(x, c):
        calls.append(len(x))
        out = net(torch.cat([x, c], 1))
        return out.squeeze(1) if out.shape[1] == 1 else out

    real, c = torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    fakes = [torch.randn(6, 4, dtype=torch.float64) for _ in range(loss.n_fake)]
    results = {}
    for joint in (False, True):
        loss.joint, calls[:] = joint, []
        torch.manual_seed(1)  # the same interpolates for the penalty
        value, logs = loss.critic_loss(critic, real, fakes, c)
        critic_calls = list(calls)
        net.zero_grad()
        value.backward()
        g_value, _ = loss.generator_loss(critic, real, fakes, c)
        assert value.dtype == g_value.dtype == torch.float64
        results[joint] = (torch.stack([value.detach(), g_value.detach(), *(v.detach() for v in logs.values())]),
                          [p.grad.clone() for p in net.parameters()], critic_calls)
    (values0, grads0, calls0), (values1, grads1, calls1) = results[False], results[True]
    # Each value and gradient entry sums at most 24 rows' terms (the batches), of sizes up to a few times
    # the largest entry: reordered, it moves by up to about 24 x a few eps64 times that (measured: 1.03).
    assert_rounding_close(values1, values0, k=64)
    scale = max(g.abs().max().item() for g in grads0)
    for i, (a, b) in enumerate(zip(grads0, grads1, strict=True)):
        assert_rounding_close(b, a, k=64, scale=scale, msg=f"parameter {i}'s gradient")
    n_passes = 1 + loss.n_fake  # real and each generated batch; then the penalty's pass
    assert calls0 == [6] * (n_passes + 1) and calls1 == [6 * n_passes, 6]
