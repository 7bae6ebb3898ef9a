"""The thin base every family shares: data-space ``sample``, optimizer wiring, safe stepping.

All families use manual optimization: one ``training_step`` per generator iteration over batches
pre-sliced from memory, stepping the torch optimizers directly. This keeps Lightning within a few
per cent of a plain PyTorch loop (``scripts/bench_overhead.py``). The price: mixed-precision
plugins that wrap ``optimizer.step`` are not supported; fp32 and bf16 are.
"""

from __future__ import annotations

import math
import random

import lightning as L
import numpy as np
import torch
from torch import nn

from gentwin.data.transforms import Identity
from gentwin.errors import Diverged


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


class GenerativeModel(L.LightningModule):
    """Base of the GAN, VAE and Flow modules.

    Args:
        shape: One sample's shape in data space (from the datamodule).
        cond_dim: Condition width, 0 when unconditional (from the datamodule).
        transform: Fitted data transform (data -> model space); saved in checkpoints.
        optimizer: Partial ``params -> torch.optim.Optimizer`` (optimizer group).
        lr_schedule: Partial ``optimizer -> lr_scheduler`` stepped once per epoch, or ``None``.
    """

    def __init__(self, *, shape, cond_dim: int = 0, transform: nn.Module | None = None,
                 optimizer=None, lr_schedule=None):
        super().__init__()
        self.automatic_optimization = False
        self.shape, self.cond_dim = tuple(shape), int(cond_dim)
        self.transform = transform if transform is not None else Identity()
        self.optimizer_factory = optimizer if optimizer is not None else torch.optim.Adam
        self.lr_schedule_factory = lr_schedule
        self.batches_per_step = 1
        self.steps_per_epoch = 1
        self.build_info: dict = {}
        self._resume_rng: dict | None = None

    # -- the contract -------------------------------------------------------------------------
    def generate(self, n: int, c: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` samples in model space, ``(n, *shape)``; ``c`` is ``(n, cond_dim)`` or ``None``."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, n: int, c: torch.Tensor | None = None, batch_size: int = 65_536) -> torch.Tensor:
        """``n`` samples in data space, ``(n, *shape)``, generated in chunks of ``batch_size``."""
        was_training = self.training
        self.eval()
        out = []
        for i in range(0, n, batch_size):
            m = min(batch_size, n - i)
            ci = None if c is None else c[i : i + m].to(self.device)
            out.append(self.transform.inverse(self.generate(m, ci)))
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, *self.shape)

    # -- wiring ---------------------------------------------------------------------------------
    def param_groups(self) -> list[tuple[str, list[nn.Parameter], float | None]]:
        """``(name, parameters, lr or None for the optimizer's own)`` per optimizer."""
        return [("model", [p for n, p in self.named_parameters() if not n.startswith("transform.")], None)]

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

    def step(self, index: int, loss: torch.Tensor, name: str, last: bool = True) -> None:
        """Backward and step optimizer ``index``, refusing a non-finite loss before it reaches the weights.

        ``last`` marks the final update of a training step (it advances ``global_step``).
        """
        if not math.isfinite(loss.item()):
            raise Diverged(
                f"{name} became {loss.item()} at step {self.global_step} (epoch {self.current_epoch}); "
                f"training stopped before the update"
            )
        opt = self._pl_opts[index] if last else self._opts[index]
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()

    def log_step(self, values: dict[str, torch.Tensor]) -> None:
        """Writes ``train/<name>`` scalars and learning rates every ``trainer.log_every_n_steps`` steps.

        Straight to the loggers: ``self.log`` per step costs more than a small model's step.
        """
        every = self.trainer.log_every_n_steps if self._trainer is not None else 1
        step = self.global_step - 1  # the generator update of this step has already counted
        if step % every:
            return
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
        x, c = batch
        if hasattr(self, "log_prob"):
            with torch.no_grad():
                nll = -self.log_prob(self.transform.inverse(x), c).mean()
            self.log("val/nll", nll, prog_bar=False, batch_size=len(x))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gentwin"] = dict(self.build_info, shape=list(self.shape), cond_dim=self.cond_dim)
        checkpoint["rng"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resume_rng = checkpoint.get("rng")

    @staticmethod
    def _cat(z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return z if c is None else torch.cat([z, c], dim=1)
