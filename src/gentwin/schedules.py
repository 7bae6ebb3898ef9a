"""Loss-weight schedules: plain callables ``epoch -> value``.

``epoch`` is fractional (``global_step / steps_per_epoch``) so that a schedule reads in the units
the reports use ("beta from 10 to 100 over 1000 epochs") and still moves every step.
Learning-rate schedules are torch ``lr_scheduler`` classes (torch's own, and ``CosineToBudget``),
configured as partials in ``configs/schedule/lr/``.
"""

from __future__ import annotations

import math

import torch


class Constant:
    """``value`` at every epoch."""

    def __init__(self, value: float = 1.0):
        self.value = value

    def __call__(self, epoch: float) -> float:
        return self.value


class LinearWarmup:
    """Linear ramp from ``start`` to ``end`` over ``epochs``, then ``end`` (Bowman et al., 2016)."""

    def __init__(self, start: float = 0.0, end: float = 1.0, epochs: float = 10.0):
        if epochs <= 0:
            raise ValueError(f"epochs must be > 0, got {epochs}")
        self.start, self.end, self.epochs = start, end, epochs

    def __call__(self, epoch: float) -> float:
        t = min(max(epoch / self.epochs, 0.0), 1.0)
        return self.start + t * (self.end - self.start)


class Cyclical:
    """Cyclical annealing (Fu et al., 2019), as used for the leaf beta-VAE (van Beek 2023 (leaf digital twin) §4.3).

    Each cycle of ``period`` epochs ramps linearly from ``low`` to ``high`` during the first
    ``ratio`` of the cycle, holds ``high``, then restarts at ``low``. With ``cycles`` set, the value
    is ``final`` after that many cycles (van Beek 2023: from 10 to 100 over 1000 epochs, then 0).
    """

    def __init__(
        self,
        low: float = 0.0,
        high: float = 1.0,
        period: float = 10.0,
        ratio: float = 0.5,
        cycles: int | None = None,
        final: float | None = None,
    ):
        if period <= 0 or not 0 < ratio <= 1:
            raise ValueError(f"need period > 0 and 0 < ratio <= 1, got period={period}, ratio={ratio}")
        self.low, self.high, self.period, self.ratio = low, high, period, ratio
        self.cycles, self.final = cycles, final

    def __call__(self, epoch: float) -> float:
        if self.cycles is not None and epoch >= self.cycles * self.period:
            return self.high if self.final is None else self.final
        t = math.fmod(max(epoch, 0.0), self.period) / (self.period * self.ratio)
        return self.low + min(t, 1.0) * (self.high - self.low)



class CosineToBudget(torch.optim.lr_scheduler.LRScheduler):
    """Learning rate on a cosine from the optimizer's lr to ``eta_min`` over the run's budget.

    The budget is whichever of ``trainer.max_epochs``, ``trainer.max_steps`` and ``trainer.max_time``
    ends the run first: ``progress``, set before every training step by ``gentwin.training.callbacks.FollowBudget``,
    is the largest of the fractions of them used (0 at the start, 1 at the end). It is part of the
    scheduler's state, so a resumed run continues on the same curve.
    """

    def __init__(self, optimizer, eta_min: float = 0.0):
        self.eta_min, self.progress = eta_min, 0.0
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        f = min(max(self.progress, 0.0), 1.0)
        return [self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * f)) / 2 for base in self.base_lrs]


class ExponentialToFloor(torch.optim.lr_scheduler.LRScheduler):
    """The lr multiplied by ``gamma`` every epoch, as ``torch.optim.lr_scheduler.ExponentialLR``, but
    never below ``eta_min``: a fast start that settles at a rate that stays trained at."""

    def __init__(self, optimizer, gamma: float = 0.99, eta_min: float = 0.0):
        if not 0 < gamma <= 1:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        self.gamma, self.eta_min = gamma, eta_min
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        return [max(base * self.gamma**self.last_epoch, min(self.eta_min, base)) for base in self.base_lrs]
