"""Lightning callbacks: evaluation at each validation, checkpoints, the run clock and progress output."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from gentwin.errors import ConfigError
from gentwin.plots.common import stamp, tensorboard
from gentwin.training.evaluate import evaluate
from gentwin.training.validation import EVALUATOR_KEYS


class Evaluator(L.Callback):
    """Compares generated and held-out samples at each validation: ``val/<metric>`` and figures.

    Args:
        entries: metric entries (``gentwin.training.evaluate``).
        figures_every: draw the figures at every n-th validation (the first included); 0 never (``run``
            then draws no final figures either).
        monitor: the monitored metric's name (``metric.monitor``), written with the epoch above each figure.
            Figures can cost more than the metrics (docs/benchmarks.md).
        smooth: with ``smooth`` > 1, also logs ``val/<monitor>_smoothed``, the mean of the monitored
            value over the last ``smooth`` validations (fewer at the start): the best checkpoint is then
            chosen on it (``metric.smooth``), not on one validation's noise.
    """

    def __init__(self, entries: dict, figures_every: int = 1, monitor: str | None = None, smooth: int = 1):
        self.entries, self.figures_every, self.monitor = entries, int(figures_every), monitor
        self.smooth = int(smooth)
        self.window: list[float] = []
        self.last: dict[str, float] = {}
        self.validations = 0

    def state_dict(self) -> dict:
        return {"validations": self.validations, "window": list(self.window)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.validations = int(state_dict.get("validations", 0))
        self.window = [float(v) for v in state_dict.get("window", [])]

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        import matplotlib.pyplot as plt

        figures = self.figures_every > 0 and self.validations % self.figures_every == 0
        self.validations += 1
        metrics, figs, _ = evaluate(pl_module, trainer.datamodule, self.entries, figures=figures)
        self.last = metrics
        if self.monitor is not None and self.monitor not in metrics and set(metrics) - set(EVALUATOR_KEYS):
            # The entries ran, and a key under one of them is misspelt (config.validate checked the entry):
            # one line naming the values there are, instead of Lightning's checkpoint callback's traceback.
            raise ConfigError(f"invalid value metric.monitor={self.monitor}: not a value this run's metrics log; "
                              f"they are {', '.join(sorted(metrics))}")
        logged = {f"val/{k}": v for k, v in metrics.items()}
        if self.smooth > 1 and self.monitor in metrics:
            self.window = [*self.window, float(metrics[self.monitor])][-self.smooth:]
            logged[f"val/{self.monitor}_smoothed"] = sum(self.window) / len(self.window)
        pl_module.log_dict(logged, sync_dist=True)
        writer = tensorboard(trainer)
        step = max(trainer.global_step - 1, 0)  # the step Lightning writes the val/ scalars at
        for name, fig in figs.items():
            if self.monitor in metrics:  # each figure says when it was drawn and how good the model was
                stamp(fig, f"epoch {trainer.current_epoch + 1}: {self.monitor} = {metrics[self.monitor]:.4g}")
            if writer is not None and trainer.is_global_zero:
                writer.add_figure(f"val/{name}", fig, global_step=step)
            plt.close(fig)


def budget_fraction(trainer, pl_module) -> float:
    """The share used of whichever budget (``max_epochs``, ``max_steps``, ``max_time``) ends the run first."""
    from lightning.pytorch.callbacks import Timer

    fractions = [0.0]
    if trainer.max_epochs and trainer.max_epochs > 0:
        fractions.append(pl_module.epoch_float / trainer.max_epochs)
    if trainer.max_steps and trainer.max_steps > 0:
        fractions.append(trainer.global_step / trainer.max_steps)
    for timer in (c for c in trainer.callbacks if isinstance(c, Timer)):
        elapsed, left = timer.time_elapsed("train"), timer.time_remaining("train")
        if left is not None and elapsed + left > 0:
            fractions.append(elapsed / (elapsed + left))
    return min(max(fractions), 1.0)


class _Progress(L.Callback):
    """What both progress displays show: the epoch of the whole run, the step, the latest losses and
    the monitored value of the last validation (with its epoch)."""

    def __init__(self, monitor: str | None = None):
        self.monitor, self.validated = monitor, None

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking and self.monitor and self.monitor in trainer.callback_metrics:
            self.validated = (trainer.current_epoch + 1, float(trainer.callback_metrics[self.monitor]))

    def detail(self, trainer, pl_module) -> str:
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        epoch = trainer.current_epoch + 1 if total is None else min(trainer.current_epoch + 1, total)  # at the end
        parts = [f"epoch {epoch}/{total or '?'}", f"step {trainer.global_step}"]
        parts += [f"{k} {v:.4g}" for k, v in getattr(pl_module, "_progress", {}).items()]
        if self.validated:
            parts.append(f"{self.monitor.removeprefix('val/')} {self.validated[1]:.4g} (epoch {self.validated[0]})")
        return "  ".join(parts)


class LineProgress(_Progress):
    """Plain progress lines for logs and pipes: one every ~5 % of the run's budget or every ``every``
    seconds, with the time left for the whole run (``gentwin.progress.Lines``). ``log_only``: on a
    terminal the lines go only to ``run.log`` (the terminal has :class:`RunBar`)."""

    def __init__(self, monitor: str | None = None, every: float = 30.0, step: float = 0.05, log_only: bool = False):
        super().__init__(monitor)
        self.every, self.step, self.log_only = every, step, log_only

    def _write(self, line: str) -> None:
        stream = getattr(sys.stdout, "log", None) if self.log_only else sys.stdout  # run.log through the tee
        if stream is not None:
            stream.write(line + "\n")
            stream.flush()

    def on_train_start(self, trainer, pl_module):
        from gentwin.progress import Lines

        self.lines = Lines("training", self.every, self.step, self._write, start=budget_fraction(trainer, pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        fraction = budget_fraction(trainer, pl_module)
        if fraction < 1.0:  # the end is said once, with the last validation's value (below)
            self.lines.update(fraction, self.detail(trainer, pl_module))

    def on_validation_end(self, trainer, pl_module):
        super().on_validation_end(trainer, pl_module)
        if self.validated and hasattr(self, "lines"):  # each validation's value is shown once, when it is new
            self.lines.update(budget_fraction(trainer, pl_module), self.detail(trainer, pl_module), force=True)

    def on_train_end(self, trainer, pl_module):
        if self.lines.last_fraction < 1.0:  # the last validation's line may already have said "done"
            self.lines.update(1.0, self.detail(trainer, pl_module), force=True)


class RunBar(_Progress):
    """A terminal's progress bar (rich) over the whole run: the epoch of all epochs, the share of the
    budget, elapsed time and ETA, and one line of losses, cut to the terminal's width."""

    def on_train_start(self, trainer, pl_module):
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        self.bar = Progress(TextColumn("training"), BarColumn(bar_width=24), TaskProgressColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            TextColumn("{task.fields[detail]}", markup=False,
                                       table_column=Column(no_wrap=True, overflow="ellipsis")),
                            transient=False, redirect_stdout=False, redirect_stderr=False)  # run.log keeps its tee
        self.bar.start()
        self.task = self.bar.add_task("", total=1000, completed=1000 * budget_fraction(trainer, pl_module),
                                      detail="")

    def _show(self, trainer, pl_module, fraction=None):
        fraction = budget_fraction(trainer, pl_module) if fraction is None else fraction
        self.bar.update(self.task, completed=1000 * fraction, detail=self.detail(trainer, pl_module))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._show(trainer, pl_module)

    def on_validation_end(self, trainer, pl_module):
        super().on_validation_end(trainer, pl_module)
        if hasattr(self, "bar"):
            self._show(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        self._show(trainer, pl_module, 1.0)
        self.bar.stop()

    def on_exception(self, trainer, pl_module, exception):
        if hasattr(self, "bar"):
            self.bar.stop()


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that trusts no path read from a checkpoint.

    On resume Lightning restores ``best_model_path``, ``best_k_models`` and ``last_model_path`` from
    the file; a copied or crafted folder could point them anywhere (a file to load, or to delete as
    "the previous best"). Only paths inside this run's checkpoint folder are kept; the scores are.
    """

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        folder = Path(self.dirpath).resolve()

        def own(path) -> bool:
            return bool(path) and Path(str(path)).resolve().parent == folder and "://" not in str(path)

        self.best_k_models = {p: v for p, v in self.best_k_models.items() if own(p)}
        for name in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if not own(getattr(self, name)):
                setattr(self, name, "")


class SameFolderCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer with its temporary file beside the checkpoint (``gentwin.atomic``).

    Lightning writes a temporary file in ``$TMPDIR`` and moves it onto the checkpoint: across two
    filesystems that move is a copy over the old file, and a kill during it leaves a truncated
    ``last.ckpt``. Here the bytes go to ``.<name>.tmp-<pid>`` in the checkpoint's folder, are synced,
    then renamed: the old checkpoint or the new one, whole, at any moment.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        import torch

        from gentwin.atomic import replacing

        if storage_options is not None:
            raise TypeError("SameFolderCheckpointIO takes no storage_options")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as f:
            torch.save(checkpoint, f)


class ValidateLast(L.Callback):
    """Validates (and so checkpoints) at the end of the run, whether ``max_epochs``, ``max_steps`` or
    ``max_time`` ends it, whatever ``check_val_every_n_epoch`` says,
    and writes ``last.ckpt`` at the end of training if the last validation came before it: a run
    shorter than one validation interval still has its metrics, ``best.ckpt`` and ``last.ckpt``."""

    def __init__(self, last_ckpt: Path):
        self.last_ckpt = Path(last_ckpt)
        self.validated_step = -1

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs:
            trainer.check_val_every_n_epoch = 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # A step or time budget ends the run inside an epoch: validate there too (Lightning validates
        # after a batch that stops the run when the epoch is one to validate).
        from lightning.pytorch.callbacks import Timer

        ends = trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step
        ends |= any((t.time_remaining("train") or 1) <= 0 for t in trainer.callbacks if isinstance(t, Timer))
        if ends:
            trainer.check_val_every_n_epoch = 1
            trainer.should_stop = True

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.validated_step = trainer.global_step

    def on_train_end(self, trainer, pl_module):
        if trainer.global_step != self.validated_step and trainer.global_step > 0:
            trainer.save_checkpoint(self.last_ckpt)


class RunClock(L.Callback):
    """Training wall time summed over a run's parts (a resumed run continues the clock)."""

    def __init__(self):
        self.before, self.start = 0.0, None

    @property
    def seconds(self) -> float:
        return self.before + (0.0 if self.start is None else time.perf_counter() - self.start)

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def state_dict(self) -> dict:
        return {"wall_time_s": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.before = float(state_dict.get("wall_time_s", 0.0))


class FollowBudget(L.Callback):
    """Sets ``CosineToBudget.progress`` before every training step and steps the scheduler: the
    fraction used of whichever budget (``max_epochs``, ``max_steps``, ``max_time``) ends the run first."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        from gentwin.schedules import CosineToBudget

        for config in trainer.lr_scheduler_configs:
            if isinstance(config.scheduler, CosineToBudget):
                config.scheduler.progress = budget_fraction(trainer, pl_module)
                config.scheduler.step()
