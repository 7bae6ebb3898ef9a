"""Conditional flow matching: a velocity field regressed on straight noise-to-data paths.

Training (Lipman et al. 2023, "Flow Matching for Generative Modeling"; Liu et al. 2023, "Flow Straight
and Fast", rectified flow): noise ``x0 ~ N(0, I)``, data ``x1``, ``t ~ U(0, 1)``,
``x_t = (1 - (1 - sigma_min) t) x0 + t x1``; the network ``v(x_t, t, c)`` regresses
``x1 - (1 - sigma_min) x0`` (mean squared error). With ``ot=true`` the noise of a batch is paired with
its data by the exact optimal-transport assignment of the batch (squared Euclidean cost; Tong et al.
2024, "Improving and generalizing flow-based generative models with minibatch optimal transport"),
which straightens the paths, so fewer solver steps give the same samples.

Sampling solves ``dx/dt = v(x, t, c)`` from ``t = 0`` (noise) to 1 (data) with a fixed-step solver
(``euler``, ``midpoint``, ``rk4``; ``model.steps`` steps): the export module is that solver unrolled,
so ``sample``, TorchScript and ONNX run the same network passes. ``solver=dopri5`` (torchdiffeq's
adaptive Dormand-Prince, relative and absolute tolerance 1e-5) is the reference a fixed-step solver's
samples can be checked against: ``sample`` runs it, ``export-model`` refuses it. ``set_sampling(steps=N)`` (``sample
... steps=N``) changes the steps of a trained model.

Likelihood: ``log p1(x1) = log N(x0) - int_0^1 div v(x_t, t) dt``, the ODE and the divergence integrated
together from data back to noise by an adaptive Dormand-Prince solver (torchdiffeq's ``dopri5``); the
divergence is the exact trace of the Jacobian for at most ``exact_trace_max_dim`` dimensions, else
Hutchinson's estimate with one Rademacher vector per sample (Grathwohl et al. 2019, FFJORD), unbiased.
"""

from __future__ import annotations

import math

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from gentwin.models.base import GenerativeModel, Sampler

#: Network passes per step of each fixed-step solver.
SOLVERS = {"euler": 1, "midpoint": 2, "rk4": 4}
#: Adaptive solvers (torchdiffeq) that ``sample`` can run as a reference for the fixed-step ones: their
#: steps follow the error (``model.steps`` unused); they cannot be exported.
ADAPTIVE = {"dopri5": 1e-5}


def fixed_step(v, x: torch.Tensor, steps: int, solver: str = "euler", t0: float = 0.0,
               t1: float = 1.0) -> torch.Tensor:
    """``x(t1)`` of ``dx/dt = v(x, t)`` from ``x(t0) = x`` in ``steps`` equal steps.

    ``v(x, t)`` takes ``t`` as a Python float. Global error O(h) (euler), O(h^2) (midpoint), O(h^4) (rk4).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)}, got {solver!r}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    h = (t1 - t0) / steps
    for i in range(steps):
        t = t0 + i * h
        if solver == "euler":
            x = x + h * v(x, t)
        elif solver == "midpoint":
            x = x + h * v(x + 0.5 * h * v(x, t), t + 0.5 * h)
        else:
            k1 = v(x, t)
            k2 = v(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = v(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = v(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def divergence(v: torch.Tensor, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """``div_x v`` per sample, ``(B,)``, of ``v = f(x)`` built with ``x`` requiring grad: the exact trace
    of the Jacobian (one backward pass per dimension) when ``noise`` is ``None``, else Hutchinson's
    ``noise^T J noise`` (one pass; unbiased for noise of zero mean and identity covariance)."""
    vf, xf = v.flatten(1), x
    if noise is not None:
        (g,) = torch.autograd.grad(vf, xf, noise.view_as(vf), create_graph=False)
        return (g.flatten(1) * noise.flatten(1)).sum(1)
    out = torch.zeros(v.shape[0], dtype=v.dtype, device=v.device)
    for i in range(vf.shape[1]):
        (g,) = torch.autograd.grad(vf[:, i].sum(), xf, retain_graph=True)
        out = out + g.flatten(1)[:, i]
    return out


def ode_log_prob(velocity, x1: torch.Tensor, exact: bool, rtol: float = 1e-5, atol: float = 1e-5,
                 method: str = "dopri5", generator: torch.Generator | None = None,
                 max_steps: int | None = None) -> torch.Tensor:
    """``log p1(x1)``, ``(B,)``, of the flow ``dx/dt = velocity(x, t)`` (``t`` a 0-d tensor) carrying
    ``N(0, I)`` at ``t = 0`` to ``p1`` at ``t = 1``: ``x`` and ``a(t) = -int_t^1 div v`` integrated from 1
    to 0 with torchdiffeq's adaptive ``method``; ``log p1(x1) = log N(x(0)) + a(0)``.

    With ``max_steps``, a solve that needs more adaptive steps (a stiff field, such as an untrained
    network's on images) stops there and gives NaN for the batch instead of running for minutes."""
    from torchdiffeq import odeint

    noise = None if exact else (torch.randint(0, 2, x1.shape, generator=generator).to(x1) * 2 - 1)

    def f(t, state):
        x, _ = state
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            v = velocity(x, t)
            div = divergence(v, x, noise)
        return v.detach(), div.detach()

    with torch.inference_mode(False), torch.no_grad():  # Lightning validates in inference mode
        x1 = x1.clone()
        a = torch.zeros(x1.shape[0], dtype=x1.dtype, device=x1.device)
        ts = torch.tensor([1.0, 0.0], dtype=x1.dtype, device=x1.device)
        options = None if max_steps is None else {"max_num_steps": int(max_steps)}
        try:
            x0, a0 = (s[-1] for s in odeint(f, (x1, a), ts, rtol=rtol, atol=atol, method=method, options=options))
        except AssertionError as e:  # torchdiffeq's way of saying max_num_steps was reached
            if "max_num_steps" not in str(e):
                raise
            return torch.full((x1.shape[0],), float("nan"), dtype=x1.dtype, device=x1.device)
        d = x0[0].numel()
        log_n = -0.5 * x0.flatten(1).pow(2).sum(1) - 0.5 * d * math.log(2 * math.pi)
        return log_n + a0


class FlowMatching(GenerativeModel):
    """A velocity field ``v(x, t, c)`` trained by conditional flow matching; samples by an ODE solver.

    Args:
        velocity: Partial ``(in_shape, cond_dim) -> nn.Module``, ``(x, t, c) -> v`` of ``x``'s shape
            (``gentwin.nets.velocity``).
        steps: Fixed solver steps of ``sample`` and the export module.
        solver: ``euler``, ``midpoint`` or ``rk4``; ``dopri5`` (adaptive) as a reference, not exportable.
        ot: Pair each batch's noise with its data by the batch's optimal-transport assignment.
        sigma_min: Width of the paths at the data end (0: straight paths between points).
        ema: Decay of an exponential moving average of the velocity weights, used outside training
            (sampling, export, likelihood); ``None`` uses the trained weights.
        head: Optional module applied to the solution in model space (a domain's zero suppression);
            ``log_prob`` is the density before it.
        exact_trace_max_dim: Largest sample size whose divergence is an exact trace in ``log_prob``.
        nll_tol: Relative and absolute tolerance of the adaptive solver in ``log_prob``.
        nll_batches: Validation batches whose ``val/nll`` is computed (an adaptive solve costs
            hundreds of network passes; ``None``: all; 0: no ``val/nll``).
        nll_samples: Held-out events whose likelihood the final evaluation's ``nll`` averages (the
            first ones; ``None``: all; 0: no ``nll``).
        nll_max_steps: Most adaptive steps of one likelihood solve; a batch that needs more gets no
            ``val/nll`` (and a NaN ``nll``) rather than minutes of solving (``None``: no limit).
        **kwargs: ``GenerativeModel`` arguments.
    """

    has_likelihood = True

    def __init__(self, velocity, steps: int = 20, solver: str = "midpoint", ot: bool = False,
                 sigma_min: float = 0.0, ema: float | None = None, head: torch.nn.Module | None = None,
                 exact_trace_max_dim: int = 16, nll_tol: float = 1e-5, nll_batches: int | None = 4,
                 nll_samples: int | None = 2048, nll_max_steps: int | None = 1000, **kwargs):
        super().__init__(**kwargs)
        self.set_sampling(steps=steps, solver=solver)
        if not 0 <= sigma_min < 1:
            raise ValueError(f"model.sigma_min must be in [0, 1), got {sigma_min}")
        if ema is not None and not 0 < ema < 1:
            raise ValueError(f"model.ema must be in (0, 1) or null, got {ema}")
        self.ot, self.sigma_min = bool(ot), float(sigma_min)
        self.exact_trace_max_dim, self.nll_tol = int(exact_trace_max_dim), float(nll_tol)
        self.velocity = velocity(in_shape=self.shape, cond_dim=self.cond_dim)
        self.velocity_ema = None if ema is None else AveragedModel(
            self.velocity, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)
        self.head = head
        self.nll_batches = nll_batches
        if nll_samples is not None and nll_samples < 0:
            raise ValueError(f"model.nll_samples must be >= 0 or null, got {nll_samples}")
        self.nll_samples = nll_samples
        self.nll_max_steps = nll_max_steps

    def set_sampling(self, steps: int | None = None, solver: str | None = None) -> None:
        """Changes the fixed-step solver of ``sample`` and the export module (after training too)."""
        steps = self.__dict__.get("steps", 20) if steps is None else steps
        solver = self.__dict__.get("solver", "midpoint") if solver is None else solver
        if solver not in SOLVERS and solver not in ADAPTIVE:
            raise ValueError(f"model.solver must be one of {', '.join([*SOLVERS, *ADAPTIVE])}, got {solver!r}")
        if int(steps) != steps or steps < 1:
            raise ValueError(f"model.steps must be an integer >= 1, got {steps}")
        self.steps, self.solver = int(steps), solver

    def export_module(self) -> FlowMatchingSampler:
        """The fixed-step solver on the averaged velocity field when ``model.ema`` is set."""
        net = self.velocity if self.velocity_ema is None else self.velocity_ema.module
        return FlowMatchingSampler(self, net)

    def log_prob(self, x, c=None):
        """``log p(x | c)`` in data space, ``(B,)``: exact up to the adaptive solver's tolerance, a
        one-sample unbiased estimate (Hutchinson) above ``exact_trace_max_dim`` dimensions."""
        net = self.velocity if self.velocity_ema is None else self.velocity_ema.module
        y = self.transform(x)

        def v(xt, t):
            return net(xt, t.expand(xt.shape[0]), c)

        exact = math.prod(self.shape) <= self.exact_trace_max_dim
        lp = ode_log_prob(v, y, exact, rtol=self.nll_tol, atol=self.nll_tol, max_steps=self.nll_max_steps)
        return lp + self.transform.log_abs_det_jacobian(x)

    def pair(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """``x0`` reordered so that row ``i`` goes with ``x1[i]`` by the batch's OT assignment."""
        from scipy.optimize import linear_sum_assignment

        cost = torch.cdist(x0.flatten(1), x1.flatten(1)).pow(2).detach().cpu().double().numpy()
        rows, cols = linear_sum_assignment(cost)
        perm = torch.empty(len(cols), dtype=torch.long)
        perm[torch.as_tensor(cols)] = torch.as_tensor(rows)
        return x0[perm.to(x0.device)]

    def loss(self, x1: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """The flow-matching regression loss of the batch ``x1`` (model space)."""
        x0 = torch.randn_like(x1)
        if self.ot:
            x0 = self.pair(x0, x1)
        t = torch.rand(x1.shape[0], device=x1.device, dtype=x1.dtype)
        tb = t.view(-1, *([1] * (x1.dim() - 1)))
        s = 1.0 - self.sigma_min
        xt = (1 - s * tb) * x0 + tb * x1
        return (self.velocity(xt, t, c) - (x1 - s * x0)).pow(2).mean()

    def training_step(self, batch, batch_idx):
        xs, cs = batch
        x, c = xs[0], None if cs is None else cs[0]
        loss = self.loss(x, c)
        self.step(0, loss, "loss")
        if self.velocity_ema is not None:
            self.velocity_ema.update_parameters(self.velocity)
        self.log_step({"loss": loss.detach()})

    def validation_step(self, batch, batch_idx):
        if self.nll_batches is not None and batch_idx >= self.nll_batches:
            return
        nll = self.batch_nll(batch)
        if torch.isfinite(nll):  # else the solver stopped at nll_max_steps: nothing to log
            self.log("val/nll", nll, prog_bar=False, batch_size=len(batch[0]))

    def param_groups(self):
        return [("velocity", list(self.velocity.parameters()), None)]


class FlowMatchingSampler(Sampler):
    """``(z[, c]) -> x``: the fixed-step solver from noise ``z`` (``prod(shape)`` wide) at ``t = 0`` to
    the sample at ``t = 1``, unrolled (``steps x`` the solver's passes of the velocity network).

    Args:
        model: The FlowMatching model (steps, solver, head).
        velocity: The velocity network to run (the trained or the averaged one).
    """

    family = "flow_matching"

    def __init__(self, model: FlowMatching, velocity: torch.nn.Module):
        super().__init__(model, math.prod(model.shape))
        self.velocity, self.steps, self.solver = velocity, model.steps, model.solver
        self.head = model.head

    @property
    def adaptive(self) -> bool:
        """Whether the solver chooses its own steps (``dopri5``): not exportable."""
        return self.solver in ADAPTIVE

    @property
    def sequential_passes(self) -> int:
        return self.steps * SOLVERS.get(self.solver, 6)  # dopri5: 6 passes per step, steps unknown

    def to_model_space(self, z, c=None, eps=None):
        def v(x, t):
            return self.velocity(x, x.new_full((x.shape[0],), t), c)

        x0 = z.reshape(z.shape[0], *self.shape)
        if self.adaptive:
            from torchdiffeq import odeint

            tol = ADAPTIVE[self.solver]
            ts = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
            x = odeint(lambda t, x: v(x, float(t.detach())), x0, ts, rtol=tol, atol=tol, method=self.solver)[-1]
        else:
            x = fixed_step(v, x0, self.steps, self.solver)
        return x if self.head is None else self.head(x)
