"""The thin base every family shares: the family contract, optimizer wiring, safe stepping.

All families use manual optimization: one ``training_step`` per generator iteration over batches
pre-sliced from memory, stepping the torch optimizers directly. This keeps Lightning within a few
per cent of a plain PyTorch loop (``scripts/bench_overhead.py``). The price: mixed-precision
plugins that wrap ``optimizer.step`` are not supported; fp32 and bf16 are.
"""

from __future__ import annotations

import math
import random
from contextlib import contextmanager

import lightning as L
import numpy as np
import torch
from torch import nn

from gentwin.data.transforms import Identity
from gentwin.errors import Diverged
from gentwin.models.guard import DeferredCheck


def rng_state() -> dict:
    """The global random states (torch, CUDA, numpy, Python) as tensors and plain values.

    Plain, so that a checkpoint holding them still loads with ``torch.load(weights_only=True)``.
    """
    kind, key, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 (the global state others draw from)
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"kind": str(kind), "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restores what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))  # noqa: NPY002
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def concat(z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """``z`` with the conditions ``c`` appended as columns (``z`` itself when unconditional)."""
    return z if c is None else torch.cat([z, c], dim=1)


class Sampler(nn.Module):
    """A family's map from standard-normal noise (and conditions) to samples in data units.

    ``sample`` draws the noise and runs this map; ``export-model`` writes it with the noise as inputs.
    Inputs, batch-first: ``z`` ``(B, latent_dim)``; ``c`` ``(B, cond_dim)`` in data units (the fitted
    condition transform is applied inside; after ``with_inputs``, the variables the dataset's conditions
    are made of), only for conditional models; ``eps`` ``(B, *shape)``, only
    when ``eps`` is set (a VAE's decoder noise). Output
    ``(B, *shape)``. A family's subclass implements ``to_model_space``; the sampler holds the parts it
    runs (networks, transform), not the LightningModule, whose trainer properties tracing would touch.

    Args:
        model: The ``GenerativeModel`` whose shape, condition width and transform it takes.
        latent_dim: Width of ``z``.
        eps: Whether the map takes the input ``eps``.
    """

    family = ""

    def __init__(self, model: GenerativeModel, latent_dim: int, eps: bool = False):
        super().__init__()
        self.shape, self.cond_dim, self.latent_dim, self.eps = model.shape, model.cond_dim, int(latent_dim), eps
        self.transform, self.cond_transform = model.transform, model.cond_transform
        self.cond_input: nn.Module | None = None

    def with_inputs(self, cond_input: nn.Module | None) -> Sampler:
        """This sampler with ``c`` the variables ``cond_input.names`` (data units), mapped inside by
        ``cond_input`` to the dataset's condition vectors (``ArrayDataModule.condition_inputs``: TPC's
        fractional parts and scaling); unchanged for ``None``. The export's graph then holds that map."""
        self.cond_input = cond_input
        return self

    def to_model_space(self, z: torch.Tensor, c: torch.Tensor | None = None,
                       eps: torch.Tensor | None = None) -> torch.Tensor:
        """The samples of noise ``z`` (and ``eps``) for conditions ``c`` in model space, ``(B, *shape)``."""
        raise NotImplementedError

    def forward(self, z: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        """``(z[, c][, eps]) -> x``, conditions and samples in data units."""
        c = None
        if self.cond_dim:
            c = self.cond_transform(rest[0] if self.cond_input is None else self.cond_input(rest[0]))
        eps = rest[-1] if self.eps else None
        return self.transform.inverse(self.to_model_space(z, c, eps))

    def draw(self, n: int, c: torch.Tensor | None = None, device=None) -> torch.Tensor:
        """``n`` samples in model space from fresh noise (``z``, then ``eps``) drawn on ``device``;
        ``c`` in model space (after the condition transform)."""
        z, *eps = self.noise(n, device)
        return self.to_model_space(z, c, eps[0] if eps else None)

    def noise(self, n: int, device=None, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Standard-normal ``(z,)`` or ``(z, eps)`` of batch ``n``."""
        z = torch.randn(n, self.latent_dim, device=device, generator=generator)
        return (z, torch.randn(n, *self.shape, device=device, generator=generator)) if self.eps else (z,)

    @property
    def sequential_passes(self) -> int:
        """Network passes the map runs one after another (the ONNX exporter unrolls them)."""
        return 1

    @property
    def input_names(self) -> list[str]:
        return ["z"] + (["c"] if self.cond_dim else []) + (["eps"] if self.eps else [])

    def input_shapes(self) -> dict[str, list]:
        width = self.cond_dim if self.cond_input is None else len(self.cond_input.names)
        shapes = {"z": ["B", self.latent_dim], "c": ["B", width], "eps": ["B", *self.shape]}
        return {k: shapes[k] for k in self.input_names}

    def example_inputs(self, n: int = 4, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """Random inputs of batch ``n`` in ``input_names`` order; conditions in data units, standard normal in
        model space (inside the transform's domain: only a shape and agreement check)."""
        out = [torch.randn(n, self.latent_dim, generator=generator)]
        if self.cond_dim and self.cond_input is not None:
            out.append(self.cond_input.example(torch.randn(n, len(self.cond_input.names), generator=generator)))
        elif self.cond_dim:
            with torch.no_grad():
                out.append(self.cond_transform.inverse(torch.randn(n, self.cond_dim, generator=generator)))
        if self.eps:
            out.append(torch.randn(n, *self.shape, generator=generator))
        return tuple(out)


class GenerativeModel(L.LightningModule):
    """Base of the GAN, VAE and Flow modules.

    The family contract: what code outside ``gentwin.models`` may use, without asking which family a
    model is. Everything is in data space, samples and conditions (the transforms are the family's
    business; ``generate``, ``training_step`` and ``Sampler.to_model_space`` take model-space conditions):

    * ``sample(n, c)``: ``n`` samples, generated outside training;
    * ``export_module()``: the ``Sampler`` that ``sample`` runs, ``(z[, c][, eps]) -> x``, with its noise
      as inputs (what ``export-model`` writes; a GAN's averaged generator when ``model.ema`` is set);
    * ``log_prob(x, c)``: ``log p(x | c)`` per sample, exact (flows) or a lower bound (VAEs: the ELBO),
      only where ``has_likelihood``;
    * ``reconstruct(x, c)``: ``x`` through encoder and decoder, only where ``can_reconstruct``;
    * ``schedules()``: the loss-weight schedules ``epoch -> weight`` a family trains with, by name;
    * ``parameter_counts()``: trainable and exported parameters (``sample``, timing and the run's
      start line count through it);
    * ``batches_per_step(config)`` (class method, read before the model is built): training batches one
      ``training_step`` takes, which the datamodule slices its epochs by.

    A family implements ``export_module`` (and ``training_step``); ``generate`` (model space) runs
    the export module on fresh noise unless a family overrides it for training.

    Args:
        shape: One sample's shape in data space (from the datamodule).
        cond_dim: Condition width, 0 when unconditional (from the datamodule).
        transform: Fitted data transform (data -> model space); saved in checkpoints.
        cond_transform: Fitted condition transform (data -> model space); saved in checkpoints.
        optimizer: Partial ``params -> torch.optim.Optimizer`` (optimizer group).
        lr_schedule: Partial ``optimizer -> lr_scheduler`` stepped once per epoch, or ``None``.
        finite_check: How a non-finite loss is refused (``step``): ``"step"``, ``"deferred"`` or
            ``None`` (``"step"`` on the CPU, ``"deferred"`` on accelerators).
    """

    def __init__(self, *, shape, cond_dim: int = 0, transform: nn.Module | None = None,
                 cond_transform: nn.Module | None = None, optimizer=None, lr_schedule=None,
                 finite_check: str | None = None):
        super().__init__()
        if finite_check not in (None, "step", "deferred"):
            raise ValueError(f"model.finite_check must be 'step', 'deferred' or null, got {finite_check!r}")
        self.finite_check = finite_check
        self.automatic_optimization = False
        self.shape, self.cond_dim = tuple(shape), int(cond_dim)
        self.transform = transform if transform is not None else Identity()
        self.cond_transform = cond_transform if cond_transform is not None else Identity()
        self.optimizer_factory = optimizer if optimizer is not None else torch.optim.Adam
        self.lr_schedule_factory = lr_schedule
        self.steps_per_epoch = 1
        self.build_info: dict = {}
        self._resume_rng: dict | None = None
        self._guard: DeferredCheck | None = None

    # -- the contract -------------------------------------------------------------------------
    has_likelihood = False
    #: Held-out events whose likelihood the final evaluation's ``nll`` averages (the first ones;
    #: ``None``: all; 0: none): a family whose likelihood is costly (an ODE solve) sets it.
    nll_samples: int | None = None
    can_reconstruct = False

    def export_module(self) -> Sampler:
        """The noise-to-sample map ``sample`` runs, ``(z[, c][, eps]) -> x`` in data units.

        It shares the model's networks: run it with the model in evaluation mode (``model.eval()``),
        as ``sample`` does, for batchnorm's running statistics.
        """
        raise NotImplementedError

    def generate(self, n: int, c: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples in model space, ``(n, *shape)``; ``c`` is ``(n, cond_dim)`` or ``None``.

        The export module's map on fresh standard-normal noise.
        """
        return self.export_module().draw(n, c, self.device)

    @torch.no_grad()
    def sample(self, n: int, c: torch.Tensor | None = None, batch_size: int = 65_536) -> torch.Tensor:
        """``n`` samples in data space, ``(n, *shape)``, generated in chunks of ``batch_size``; ``c`` in data units."""
        out = []
        with self._evaluating():
            for i in range(0, n, batch_size):
                m = min(batch_size, n - i)
                ci = None if c is None else self.model_conditions(c[i : i + m].to(self.device))
                out.append(self.transform.inverse(self.generate(m, ci)))
        return torch.cat(out) if out else torch.empty(0, *self.shape)

    def model_conditions(self, c: torch.Tensor | None) -> torch.Tensor | None:
        """Data-unit conditions ``c`` in model space (the fitted condition transform); ``None`` stays."""
        return None if c is None else self.cond_transform(c.to(torch.float32))

    def log_prob(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``log p(x | c)`` of data-space ``x`` and ``c``, ``(B,)``: exact or a lower bound, as the family says.

        Raises:
            NotImplementedError: the family has no likelihood (``has_likelihood`` is false).
        """
        raise NotImplementedError(f"{type(self).__name__} has no likelihood")

    def reconstruct(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Data-space ``x`` through the family's encoder and decoder, in data space, ``(B, *shape)``.

        Raises:
            NotImplementedError: the family is not an autoencoder (``can_reconstruct`` is false).
        """
        raise NotImplementedError(f"{type(self).__name__} does not reconstruct")

    def set_sampling(self, steps: int | None = None, solver: str | None = None) -> None:
        """Changes the steps or solver of ``sample`` and the export module (``sample ... steps=N``).

        Raises:
            NotImplementedError: the family samples in one pass (only ODE families have steps).
        """
        raise NotImplementedError(f"{type(self).__name__} samples in one pass: it has no steps or solver")

    def diagnostics(self, x: torch.Tensor, c: torch.Tensor | None = None) -> dict[str, float]:
        """Values that tell a failed fit on held-out data-space ``x`` (a VAE: ``kl``, its mean KL per
        sample in nats, near 0 when the posterior collapsed onto the prior); default none."""
        return {}

    def schedules(self) -> dict:
        """The loss-weight schedules ``epoch -> weight`` the family trains with, by name; default none."""
        return {}

    @classmethod
    def batches_per_step(cls, config) -> int:
        """Training batches one ``training_step`` of the model ``config`` (the model group) takes; default 1.

        A class method: the datamodule slices its epochs by it before the model is built.
        """
        return 1

    def parameter_counts(self) -> dict[str, int]:
        """Parameter counts, shared parameters once.

        * ``trainable``: what the optimizers update (``param_groups``: a GAN's critic included, an
          averaged copy of its generator not);
        * ``exported``: the export module's, what ``sample`` and ``export-model`` run;
        * ``batchnorm_statistics``: running means and variances of the batchnorm layers whose scale
          is trainable, which Keras' "Total params" adds (Görmüş 2023's Table 3.1 counts them).
        """
        from gentwin.nets.conv import count_params

        trainable = {id(p): p for _, params, _ in self.param_groups() for p in params}
        stats = sum(m.running_mean.numel() + m.running_var.numel() for m in self.modules()
                    if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
                    and m.weight is not None and id(m.weight) in trainable)
        return {"trainable": sum(p.numel() for p in trainable.values()),
                "exported": count_params(self.export_module()), "batchnorm_statistics": stats}

    @contextmanager
    def _evaluating(self):
        """Evaluation mode (batchnorm statistics, averaged weights) inside, the previous mode after."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    # -- wiring ---------------------------------------------------------------------------------
    def param_groups(self) -> list[tuple[str, list[nn.Parameter], float | None]]:
        """``(name, parameters, lr or None for the optimizer's own)`` per optimizer."""
        fitted = ("transform.", "cond_transform.")  # the data's, not trained
        return [("model", [p for n, p in self.named_parameters() if not n.startswith(fitted)], None)]

    def configure_optimizers(self):
        optimizers, schedulers = [], []
        for _, params, lr in self.param_groups():
            opt = self.optimizer_factory(params) if lr is None else self.optimizer_factory(params, lr=lr)
            optimizers.append(opt)
            if self.lr_schedule_factory is not None:
                schedulers.append({"scheduler": self.lr_schedule_factory(opt), "interval": "epoch"})
        return optimizers, schedulers

    def on_train_start(self) -> None:
        # Inner steps (a GAN's critic) use the torch optimizers directly: see the module docstring.
        # The last step of a training step goes through Lightning's wrapper, which counts global_step
        # (one per generator iteration) for logging, checkpoints and resuming.
        raw, wrapped = self.optimizers(use_pl_optimizer=False), self.optimizers()
        self._opts = raw if isinstance(raw, list) else [raw]
        self._pl_opts = wrapped if isinstance(wrapped, list) else [wrapped]
        self._guard = None  # a deferred check records this fit only (and its device)
        # Last, after every callback's on_train_start: a resumed run draws the random numbers the
        # uninterrupted run would have drawn from here on.
        if self._resume_rng is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None

    def on_train_epoch_start(self) -> None:
        # Per-epoch schedules step to the current epoch. Stepping here rather than at the epoch's end
        # keeps a resume exact: checkpoints are written at the epoch's validation, before its end.
        schedulers = self.lr_schedulers()
        for s in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            while s.last_epoch < self.current_epoch:
                s.step()

    #: How a non-finite loss is refused: ``"step"`` reads every loss on the host before its backward
    #: pass; ``"deferred"`` refuses the update on the device and reads a flag at the logging interval
    #: (``gentwin.models.guard``); ``None`` picks ``"step"`` on the CPU, ``"deferred"`` elsewhere.
    finite_check: str | None = None

    @property
    def deferred_check(self) -> bool:
        mode = self.finite_check or ("step" if self.device.type == "cpu" else "deferred")
        if mode not in ("step", "deferred"):
            raise ValueError(f"finite_check must be 'step', 'deferred' or None, got {mode!r}")
        return mode == "deferred"

    def step(self, index: int, loss: torch.Tensor, name: str, last: bool = True) -> None:
        """Backward and step optimizer ``index``, refusing a non-finite loss before it reaches the weights.

        ``last`` marks the final update of a training step (it advances ``global_step``).

        On the CPU (``finite_check="step"``) the loss is read on the host, which costs no device
        synchronisation there: a NaN or infinite loss raises ``Diverged`` before its backward pass,
        so neither the weights nor the optimizer state see it. On an accelerator
        (``finite_check="deferred"``) the host does not wait for the device: the update is applied
        on the device only where the loss and the gradients are finite, and from the first failure
        on no update is applied at all; ``check_finite`` (at every logging step, validation, epoch
        end and the end of the run) raises ``Diverged`` naming the first failing step, with the
        weights and the optimizer state as they were before it (``gentwin.models.guard``).
        """
        opt = self._pl_opts[index] if last else self._opts[index]
        if self.deferred_check:
            if self._guard is None:
                self._guard = DeferredCheck(self.device, self._opts)

            def backward():
                opt.zero_grad(set_to_none=True)
                self.manual_backward(loss)

            self._guard.step(index, self._opts[index], loss, name, self.global_step, backward, opt.step)
            return
        if not math.isfinite(loss.item()):
            raise Diverged(
                f"{name} became {loss.item()} at step {self.global_step} (epoch {self.current_epoch}); "
                f"training stopped before the update"
            )
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()

    def check_finite(self) -> None:
        """Raises ``Diverged`` if a deferred check recorded a non-finite step (a host synchronisation
        on an accelerator); nothing to do with the per-step check."""
        if self._guard is not None:
            self._guard.check(self._opts, self.steps_per_epoch, self.global_step)

    def on_validation_start(self) -> None:
        self.check_finite()  # no checkpoint after a refused update

    def on_train_epoch_end(self) -> None:
        self.check_finite()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.trainer.should_stop:  # the run ends here (a step or time budget): before last.ckpt
            self.check_finite()

    def on_train_end(self) -> None:
        self.check_finite()

    def log_step(self, values: dict[str, torch.Tensor | float]) -> None:
        """Writes ``train/<name>`` scalars and learning rates every ``trainer.log_every_n_steps`` steps.

        Straight to the loggers: ``self.log`` per step costs more than a small model's step. The
        values are read on the host (``float``) only at those steps, after ``check_finite``: no
        other step synchronises with the device.
        """
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        step = self.global_step - 1  # the generator update of this step has already counted
        if step % every:
            return
        self.check_finite()
        logs = {f"train/{k}": float(v) for k, v in values.items()}
        for (name, _, _), opt in zip(self.param_groups(), self._opts, strict=True):
            logs[f"train/lr_{name}"] = opt.param_groups[0]["lr"]
        if self.trainer.is_global_zero:
            for logger in self.loggers:
                logger.log_metrics(logs, step=step)
        self._progress = {k.split("/", 1)[1]: v for k, v in logs.items() if not k.startswith("train/lr")}

    @property
    def epoch_float(self) -> float:
        """Fractional epoch of the current step (for loss-weight schedules)."""
        return self.global_step / max(self.steps_per_epoch, 1)

    # -- evaluation -----------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        if self.has_likelihood:
            self.log("val/nll", self.batch_nll(batch), prog_bar=False, batch_size=len(batch[0]))

    def batch_nll(self, batch) -> torch.Tensor:
        """Mean negative log-likelihood of a model-space batch ``(x, c)``, in data space (nats per sample)."""
        x, c = batch
        with torch.no_grad():
            c = None if c is None else self.cond_transform.inverse(c)  # the batch is in model space
            return -self.log_prob(self.transform.inverse(x), c).mean()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gentwin"] = dict(self.build_info, shape=list(self.shape), cond_dim=self.cond_dim)
        checkpoint["rng"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resume_rng = checkpoint.get("rng")
