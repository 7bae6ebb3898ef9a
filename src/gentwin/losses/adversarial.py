"""Adversarial losses: a method differs from its siblings only in the loss it plugs into ``GAN``.

Each loss has two methods, ``critic_loss`` and ``generator_loss``, taking the critic (a callable
``(x, c) -> (B, K)``), a real batch, the generated batches (``n_fake`` of them) and the conditions.
They return the scalar loss and a dict of diagnostics (``d_real``, ``d_fake``, ``gp``) that the
module logs. All of them are shape-agnostic: ``x`` may be ``(B, D)`` or ``(B, C, H, W)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Critic = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]


def interpolate(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Uniform random points on the segments between paired real and fake samples."""
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)
    return eps * real + (1 - eps) * fake


def gradient_penalty(
    f: Callable[[torch.Tensor], torch.Tensor], x_hat: torch.Tensor, center: float = 1.0, one_sided: bool = False
) -> torch.Tensor:
    """Gradient penalty ``E[(||grad_x f(x_hat)||_2 - center)^2]``, or ``E[max(0, ||.|| - center)^2]`` one-sided.

    Two-sided: Gulrajani et al., "Improved Training of Wasserstein GANs" (2017), eq. (3); Malchenko
    et al. 2022 (TPC fast simulation) eq. (4). One-sided (only gradients steeper than ``center`` are
    penalised): Petzka et al., "On the regularization of Wasserstein GANs" (2018); it is what the
    code of TPC-FastSim (``models/model_v4.py``, ``gradient_penalty``) computes.

    Args:
        f: Scalar-per-sample function, ``(B, *S) -> (B,)`` or ``(B, 1)``.
        x_hat: Points where the gradient is taken, ``(B, *S)``.
        center: Target gradient norm (1 for WGAN-GP, 0 for a zero-centred penalty).
        one_sided: Penalise only norms above ``center``.

    Returns:
        The penalty, a scalar tensor (differentiable w.r.t. the parameters of ``f``).
    """
    x_hat = x_hat.detach().requires_grad_(True)
    out = f(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    excess = grad.flatten(1).norm(2, dim=1) - center
    return ((excess.clamp_min(0) if one_sided else excess) ** 2).mean()


class _Penalized:
    """Shared gradient-penalty bookkeeping: ``gp_weight * gradient_penalty`` on interpolates, and
    the critic's passes over the real and generated batches.

    ``joint``: score those batches in one critic call on their concatenation. ``GAN`` turns it on when
    its critic has no batch statistics (no batch normalisation): the outputs are then those of one
    call per batch (dropout draws each element independently either way), for one call's overheads;
    about 1.1-1.2x faster TPC critic steps on a CPU (docs/benchmarks.md). Off by default: with batch
    normalisation a joint call would normalise real and generated samples together.
    """

    critic_out = 1
    n_fake = 1
    joint = False

    def __init__(self, gp_weight: float = 0.0, one_sided: bool = False):
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        self.gp_weight, self.one_sided = gp_weight, bool(one_sided)

    def _passes(self, critic: Critic, xs: list[torch.Tensor], c) -> list[torch.Tensor]:
        """``[critic(x, c) for x in xs]``, in one call on the concatenated batches when ``joint``."""
        if not self.joint or len(xs) == 1:
            return [critic(x, c) for x in xs]
        cs = None if c is None else torch.cat([c] * len(xs))
        return list(critic(torch.cat(xs), cs).split([len(x) for x in xs]))

    def _penalty(self, f, real, fake, c) -> torch.Tensor:
        if self.gp_weight == 0:
            return real.new_zeros(())
        return gradient_penalty(lambda x: f(x, c), interpolate(real, fake), one_sided=self.one_sided)


class BCE(_Penalized):
    """The original GAN loss with the non-saturating generator loss.

    Goodfellow et al. (2014). The critic outputs logits. With ``gp_weight > 0`` the critic gets the
    two-sided gradient penalty of Malchenko et al. 2022 §4.4.4 ("vanilla GAN with gradient penalty").
    ``d_real``/``d_fake`` are the mean probabilities D(x), D(G(z)) (van Beek 2023 (leaf digital twin) Figure 2).
    """

    def critic_loss(self, critic: Critic, real, fakes, c):
        fake = fakes[0]
        lr, lf = self._passes(critic, [real, fake], c)
        loss = F.binary_cross_entropy_with_logits(lr, torch.ones_like(lr)) + \
            F.binary_cross_entropy_with_logits(lf, torch.zeros_like(lf))
        gp = self._penalty(critic, real, fake, c)
        logs = {"d_real": torch.sigmoid(lr).mean(), "d_fake": torch.sigmoid(lf).mean(), "gp": gp}
        return loss + self.gp_weight * gp, logs

    def generator_loss(self, critic: Critic, real, fakes, c):
        lf = critic(fakes[0], c)
        return F.binary_cross_entropy_with_logits(lf, torch.ones_like(lf)), {}


class LeastSquares(_Penalized):
    """Least-squares GAN, Mao et al. (2017); Calvo Ordoñez 2022 (generative ML for particle physics) eqs. (3.23)-(3.24).

    ``L_d = E[(d(x) - 1)^2] + E[d(g(z))^2]``, ``L_g = E[(d(g(z)) - 1)^2]`` on the raw critic output.
    """

    def critic_loss(self, critic: Critic, real, fakes, c):
        fake = fakes[0]
        dr, df = self._passes(critic, [real, fake], c)
        gp = self._penalty(critic, real, fake, c)
        loss = ((dr - 1) ** 2).mean() + (df**2).mean()
        return loss + self.gp_weight * gp, {"d_real": dr.mean(), "d_fake": df.mean(), "gp": gp}

    def generator_loss(self, critic: Critic, real, fakes, c):
        return ((critic(fakes[0], c) - 1) ** 2).mean(), {}


class WassersteinGP(_Penalized):
    """Wasserstein loss with gradient penalty, Gulrajani et al. (2017); Malchenko et al. 2022 eq. (4).

    ``L_critic = E[D(G(z))] - E[D(x)] + gp_weight * GP``, ``L_g = -E[D(G(z))]``.
    """

    def __init__(self, gp_weight: float = 10.0, one_sided: bool = False):
        super().__init__(gp_weight, one_sided)

    def critic_loss(self, critic: Critic, real, fakes, c):
        fake = fakes[0]
        dr, df = self._passes(critic, [real, fake], c)
        gp = self._penalty(critic, real, fake, c)
        return df.mean() - dr.mean() + self.gp_weight * gp, {"d_real": dr.mean(), "d_fake": df.mean(), "gp": gp}

    def generator_loss(self, critic: Critic, real, fakes, c):
        return -critic(fakes[0], c).mean(), {}


class Cramer(_Penalized):
    """Cramér GAN, Bellemare et al., "The Cramer Distance as a Solution to Biased Wasserstein
    Gradients" (2017), Algorithm 1; Malchenko et al. 2022 eqs. (6)-(7).

    The critic is a transform ``h: x -> R^critic_out`` (256 in the TPC study). With two independent
    generated batches ``x_g, x_g'``, the critic surrogate is ``f(x) = ||h(x) - h(x_g')|| - ||h(x)||``,
    ``L_critic = -(E f(x_r) - E f(x_g)) + gp_weight * GP(f)`` and
    ``L_g = E||h(x_r) - h(x_g)|| + E||h(x_r) - h(x_g')|| - E||h(x_g) - h(x_g')||``
    (Malchenko et al. 2022 eq. (7) prints the first term twice; this is the paper's form).
    """

    n_fake = 2

    def __init__(self, gp_weight: float = 10.0, critic_out: int = 256, one_sided: bool = False):
        super().__init__(gp_weight, one_sided)
        self.critic_out = critic_out

    @staticmethod
    def _surrogate(critic: Critic, h_ref: torch.Tensor):
        def f(x, c):
            h = critic(x, c)  # one pass: with dropout, two passes would be two different functions
            return (h - h_ref).norm(dim=1) - h.norm(dim=1)

        return f

    def critic_loss(self, critic: Critic, real, fakes, c):
        fake, fake2 = fakes
        h2, hr, hf = self._passes(critic, [fake2, real, fake], c)
        fr = (hr - h2).norm(dim=1) - hr.norm(dim=1)
        ff = (hf - h2).norm(dim=1) - hf.norm(dim=1)
        h2_fixed = h2.detach()
        gp = self._penalty(self._surrogate(critic, h2_fixed), real, fake, c)
        return -(fr.mean() - ff.mean()) + self.gp_weight * gp, {"d_real": fr.mean(), "d_fake": ff.mean(), "gp": gp}

    def generator_loss(self, critic: Critic, real, fakes, c):
        fake, fake2 = fakes
        hr, hf, h2 = self._passes(critic, [real, fake, fake2], c)
        loss = (hr - hf).norm(dim=1).mean() + (hr - h2).norm(dim=1).mean() - (hf - h2).norm(dim=1).mean()
        return loss, {}
