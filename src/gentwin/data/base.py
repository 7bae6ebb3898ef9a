"""The in-memory datamodule every domain builds on.

A domain subclass implements ``build(rng) -> (x, c)`` (data-space numpy arrays) and, where it has
them, ``properties`` and ``figures``. This base splits, fits the transform on the training split,
and serves batches pre-sliced from in-memory tensors: one item per generator step holding
``batches_per_step`` batches (the critic steps of a GAN), which keeps Lightning's per-step overhead
near that of a plain PyTorch loop (see ``scripts/bench_overhead.py``).
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

from gentwin.data.transforms import Identity
from gentwin.errors import ConfigError, DataError


class EpochBatches:
    """Shuffled batches of in-memory tensors, grouped ``per_step`` to a training step.

    Yields ``(x, c)`` with ``x`` of shape ``(per_step, B, *S)`` and ``c`` of ``(per_step, B, C)`` or
    ``None``; the last incomplete group of an epoch is dropped. With ``world_size > 1`` every rank
    takes a disjoint, equally long share of each epoch's permutation.
    """

    def __init__(self, x, c, batch_size: int, per_step: int, seed: int, rank: int = 0, world_size: int = 1):
        self.x, self.c = x, c
        self.batch_size, self.per_step = batch_size, per_step
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.x) // self.world_size // (self.batch_size * self.per_step)

    @property
    def sampler(self) -> EpochBatches:
        """Itself: Lightning calls ``loader.sampler.set_epoch(epoch)`` before every epoch."""
        return self

    def set_epoch(self, epoch: int) -> None:
        """Draws epoch ``epoch``'s order next; a resumed run so continues the uninterrupted one's order."""
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        perm = torch.randperm(len(self.x), generator=g)
        share = len(self.x) // self.world_size
        perm = perm[self.rank * share : (self.rank + 1) * share]
        group = self.batch_size * self.per_step
        for i in range(len(self)):
            idx = perm[i * group : (i + 1) * group]
            xb = self.x[idx].view(self.per_step, self.batch_size, *self.x.shape[1:])
            cb = None if self.c is None else self.c[idx].view(self.per_step, self.batch_size, -1)
            yield xb, cb


class _Once:
    """An iterable of exactly one batch (a list would read as several dataloaders)."""

    def __init__(self, batch):
        self.batch = batch

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield self.batch


class ArrayDataModule(L.LightningDataModule):
    """Base for in-memory datasets.

    Contract used by models, metrics and commands:
      * ``shape``: one sample's shape; ``cond_dim``: condition width (0 when unconditional);
        ``cond_names``: names of the condition columns;
      * ``transform``: an invertible ``nn.Module`` fitted on the training split (data -> model space);
      * ``cond_transform``: the same for the conditions (``dataset.cond_transform``), fitted on the
        training split; ``cond_range``: each named condition's ``(min, max)`` over the dataset, in data
        units (``sample`` refuses conditions outside it);
      * ``x_train, c_train, x_val, c_val``: tensors in model space; ``x_raw_val, c_raw_val``: data space;
      * ``properties(x, c)`` and ``figures(...)`` for evaluation, in data space;
        ``real_properties()``: those of the held-out samples evaluation compares with, computed once.

    Args:
        n: Number of samples to build (simulators) or ``None`` (files: all).
        val_fraction: Held-out share, in (0, 1).
        batch_size: Samples per batch.
        transform: Transform module (``None`` = identity).
        cond_transform: Transform of the conditions (``None`` = identity).
        seed: Seed of the data generation and the split (independent of the training seed).
        n_eval: Samples compared at each validation (``None`` = the whole held-out split).
    """

    def __init__(
        self,
        n: int | None = 10_000,
        val_fraction: float = 0.25,
        batch_size: int = 64,
        transform: nn.Module | None = None,
        seed: int = 0,
        n_eval: int | None = None,
        cond_transform: nn.Module | None = None,
    ):
        super().__init__()
        if n is not None and n < 2:
            raise ConfigError(f"dataset.n must be >= 2, got {n}")
        if not 0 < val_fraction < 1:
            raise ConfigError(f"dataset.val_fraction must be in (0, 1), got {val_fraction}")
        if batch_size < 1:
            raise ConfigError(f"dataset.batch_size must be >= 1, got {batch_size}")
        self.n, self.val_fraction, self.batch_size = n, val_fraction, batch_size
        self.transform = transform if transform is not None else Identity()
        self.cond_transform = cond_transform if cond_transform is not None else Identity()
        self.units: dict[str, str] = {}
        self.cond_range: dict[str, tuple[float, float]] = {}
        self.cond_input_range: list[tuple[float, float]] = []  # per column of c, what the model takes
        self.seed, self.n_eval = seed, n_eval
        self.batches_per_step = 1
        self.cond_names: list[str] = []
        self._built = False
        self._real_properties: dict[str, np.ndarray] | None = None
        self._floor_properties: dict[str, np.ndarray] | None = None

    # -- to implement -------------------------------------------------------------------------
    def build(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """Returns data-space samples ``x`` ``(N, *S)`` and conditions ``c`` ``(N, C)`` or ``None``."""
        raise NotImplementedError

    def properties(self, x: np.ndarray, c: np.ndarray | None) -> dict[str, np.ndarray]:
        """The key properties through which samples act downstream; default: each feature."""
        flat = x.reshape(len(x), -1)
        return {f"x{i}": flat[:, i] for i in range(flat.shape[1])}

    def second_sample(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        """``n`` new unconditional data samples ``(n, *S)``, independent of the data set, from the domain's
        simulator; ``None`` where there is none (a file, conditions). The floor of the property metrics
        compares them with the held-out samples (``floor_properties``)."""
        return None

    def figures(self, real: np.ndarray, fake: np.ndarray, c: np.ndarray | None) -> dict:
        """Matplotlib figures comparing real and generated samples (data space)."""
        return {}

    def summary(self, real: dict[str, np.ndarray], fake: dict[str, np.ndarray]) -> str:
        """Text printed at the end of a run: the statistics table for a few properties."""
        if len(real) > 8:
            return ""
        from gentwin.metrics.moments import format_moment_table

        return format_moment_table(real, fake)

    def writers(self) -> dict:
        """Output formats of this domain besides ``.npz``: ``{suffix: write(samples, path) -> summary line}``,
        ``samples`` in data units (e.g. leaves: ``.geojson`` and ``.wkt`` geometry). ``sample out=<file>``
        picks one by the file's suffix; ``run`` writes ``samples<suffix>`` with the first."""
        return {}

    def callbacks(self) -> list:
        """Lightning callbacks the run adds for this dataset (e.g. image grids); default none."""
        return []

    def conditions(self, c: np.ndarray | None) -> dict[str, np.ndarray] | None:
        """Named condition columns (profile variables for conditional metrics)."""
        if c is None:
            return None
        return {name: c[:, i] for i, name in enumerate(self.cond_names)}

    def condition_ranges(self, c: np.ndarray) -> dict[str, tuple[float, float]]:
        """The range of each named condition (``conditions``) that ``sample`` accepts without
        ``extrapolate=true``; default: its minimum and maximum over the dataset ``c``."""
        return {name: (float(np.min(v)), float(np.max(v))) for name, v in (self.conditions(c) or {}).items()}

    def condition_inputs(self) -> nn.Module | None:
        """The map from the variables a simulation chain has (``.names``, data units) to this dataset's
        condition vectors, as a module the export puts in front of the model; ``None`` (default) where
        the condition vectors are those variables (TPC: fractional parts and the baseline's scaling)."""
        return None

    # -- provided ------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self._built:
            return
        rng = np.random.default_rng(self.seed)
        x, c = self.build(rng)
        n = len(x)
        n_val = max(1, int(round(n * self.val_fraction)))
        if n - n_val < self.batch_size * self.batches_per_step:
            raise ConfigError(
                f"dataset.batch_size={self.batch_size} x {self.batches_per_step} batch(es) per step needs "
                f"{self.batch_size * self.batches_per_step} training samples, the dataset has {n - n_val}"
            )
        perm = rng.permutation(n)
        tr, va = perm[n_val:], perm[:n_val]
        x_t = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
        self.transform.fit(x_t[tr])
        with torch.no_grad():
            z = self.transform(x_t)
        self.x_raw_val = x[va]
        self.x_train, self.x_val = z[tr].contiguous(), z[va].contiguous()
        if c is None:
            self.c_train = self.c_val = None
            self.c_raw_val = None
        else:
            c_t = torch.as_tensor(np.ascontiguousarray(c), dtype=torch.float32)
            try:
                self.cond_transform.fit(c_t[tr])
            except ValueError as e:  # e.g. log of a non-positive energy: name the key that chose it
                raise DataError(f"dataset.cond_transform on the conditions {self.cond_names}: "
                                f"{str(e).replace('dataset.transform', 'dataset.cond_transform')}") from None
            with torch.no_grad():
                k = self.cond_transform(c_t)
            bad = ~torch.isfinite(k)
            if bad.any():  # a held-out row outside the domain the training split was checked for
                i, j = (int(v) for v in bad.nonzero()[0])
                name = self.cond_names[j] if j < len(self.cond_names) else f"column {j}"
                raise DataError(f"dataset.cond_transform ({type(self.cond_transform).__name__}) cannot take the "
                                f"condition {name}={float(c_t[i, j]):.6g} of row {i}: it gives {float(k[i, j])}")
            self.c_train, self.c_val = k[tr].contiguous(), k[va].contiguous()
            self.c_raw_val = c[va]
            self.cond_range = self.condition_ranges(c)
            self.cond_input_range = [(float(v.min()), float(v.max())) for v in np.asarray(c, np.float32).T]
        self.shape = tuple(x.shape[1:])
        self.cond_dim = 0 if c is None else c.shape[1]
        self._built = True

    def scale_hint(self, limit: float = 1e3) -> str:
        """Why a first step may have gone non-finite: a model input far from unit scale after its
        transform, and the key that fixes it; ``""`` when every input is within ``limit``."""
        hints = []
        for what, t, key, transform, names, fix in (
                ("samples", self.x_train, "dataset.transform", self.transform, None,
                 "dataset/transform=log1p_standardize"),
                ("conditions", self.c_train, "dataset.cond_transform", self.cond_transform, self.cond_names,
                 "dataset/cond_transform=log_standardize (or standardize)")):
            if t is None or not len(t):
                continue
            peak = t.flatten(1).abs().amax(0)
            peak = torch.where(torch.isfinite(peak), peak, torch.full_like(peak, float("inf")))
            i = int(peak.argmax())
            if peak[i] > limit:
                name = names[i] if names and i < len(names) else f"column {i}"
                hints.append(f"{what} {name!r} reach {float(peak[i]):.3g} after {key} "
                             f"({type(transform).__name__}), far from unit scale: set {fix}")
        return "; likely cause: " + "; ".join(hints) if hints else ""

    @property
    def n_train(self) -> int:
        return len(self.x_train)

    def steps_per_epoch(self, world_size: int = 1) -> int:
        return max(1, self.n_train // world_size // (self.batch_size * self.batches_per_step))

    def train_dataloader(self):
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return EpochBatches(self.x_train, self.c_train, self.batch_size, self.batches_per_step,
                            self.seed, rank, world)

    def val_dataloader(self):
        # One item: the validation is a comparison of distributions, not a sum over batches.
        return _Once((self.x_val, self.c_val))

    def eval_slice(self) -> slice:
        n = len(self.x_val) if self.n_eval is None else min(self.n_eval, len(self.x_val))
        return slice(0, n)

    def real_properties(self) -> dict[str, np.ndarray]:
        """``properties`` of the held-out samples that evaluation compares with (``eval_slice``).

        Computed at the first call and kept: the held-out split does not change after ``setup``.
        """
        if self._real_properties is None:
            sl = self.eval_slice()
            self._real_properties = self.properties(self.x_raw_val[sl],
                                                    None if self.c_raw_val is None else self.c_raw_val[sl])
        return self._real_properties

    def floor_properties(self) -> dict[str, np.ndarray] | None:
        """``properties`` of a second real sample of the held-out size (``second_sample``, seeded apart from
        the data set), or ``None``. Made at the first call and kept."""
        if self._floor_properties is None:
            n = self.eval_slice().stop - self.eval_slice().start
            x = self.second_sample(n, np.random.default_rng([self.seed, 1]))
            if x is None:
                return None
            self._floor_properties = self.properties(x, None)
        return self._floor_properties

    def describe(self) -> str:
        return (f"{type(self).__name__}: shape {self.shape}, cond_dim {self.cond_dim}, "
                f"{self.n_train} train / {len(self.x_val)} held-out, "
                f"{self.steps_per_epoch()} steps per epoch")
