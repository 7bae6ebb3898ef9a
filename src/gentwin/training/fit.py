"""One run: build the objects a config names, fit, evaluate, write the run folder."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gentwin.atomic import remove_stale, replacing, write_text
from gentwin.data.interface import condition_info
from gentwin.errors import ConfigError, DataError, Diverged, GentwinError
from gentwin.training.configs import specialisations
from gentwin.training.launch import set_threads
from gentwin.training.validation import validate


def _quiet() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (".*does not have many workers.*", ".*Checkpoint directory.*exists and is not empty.*",
                    ".*GPU available but not used.*", ".*`isinstance.*LeafSpec.*",
                    ".*is an invalid version and will not be supported.*", ".*The number of training batches.*",
                    # CosineToBudget computes the rate from the budget's progress, not from a step count
                    ".*Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`.*"):
        warnings.filterwarnings("ignore", message=pattern)


def hparams(cfg: DictConfig, choices: dict) -> dict:
    """Scalar hyperparameters for TensorBoard's HParams tab: the group choices and the flat values."""
    out = {f"choice/{k}": str(v) for k, v in choices.items() if not k.startswith("hydra")}
    for group in ("model", "dataset", "optimizer", "schedule", "trainer"):
        if group not in cfg:
            continue
        flat = OmegaConf.to_container(cfg[group], resolve=True)
        stack = [(group, flat)]
        while stack:
            prefix, node = stack.pop()
            for k, v in node.items():
                if k in ("_target_", "_partial_"):
                    continue
                key = f"{prefix}.{k}"
                if isinstance(v, dict):
                    stack.append((key, v))
                elif isinstance(v, bool | int | float | str):
                    out[key] = v
                elif isinstance(v, list):
                    out[key] = str(v)
    out["seed"] = cfg.seed
    return out


def _instantiate(node, **kwargs):
    """``hydra.utils.instantiate``, re-raising a gentwin error a constructor raised as itself.

    Hydra wraps what a constructor raises in an ``InstantiationException``; a ``ConfigError`` or
    ``DataError`` (``dataset.path is not set``, ...) keeps its one line and its exit code.
    """
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, GentwinError):
            raise e.__cause__ from None
        raise


def build(cfg: DictConfig):
    """Instantiates datamodule and model from ``cfg``; the data tells the model its shapes."""
    from hydra.utils import instantiate

    from gentwin.models import batches_per_step

    dm = _instantiate(cfg.dataset)
    dm.batches_per_step = batches_per_step(cfg.model)
    try:
        dm.setup()
    except (ConfigError, DataError):
        raise
    except (OSError, ValueError) as e:  # readers name the file and line; keep their message
        raise DataError(str(e)) from e
    schedule = cfg.get("schedule") or {}
    model = _instantiate(
        cfg.model,
        shape=dm.shape,
        cond_dim=dm.cond_dim,
        transform=dm.transform,
        cond_transform=dm.cond_transform,
        optimizer=instantiate(cfg.optimizer),
        lr_schedule=instantiate(schedule["lr"]) if schedule.get("lr") else None,
    )
    model.steps_per_epoch = dm.steps_per_epoch()
    model.build_info = {
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "transform": OmegaConf.to_container(cfg.dataset.get("transform"), resolve=True)
        if cfg.dataset.get("transform") else None,
        "cond_names": list(dm.cond_names),
        **condition_info(cfg.dataset, dm),
        "dataset": OmegaConf.to_container(cfg.dataset, resolve=True),
        "metric": OmegaConf.to_container(cfg.metric, resolve=True) if cfg.get("metric") else None,
        "seed": cfg.get("seed"),  # `evaluate <ckpt>` repeats the final evaluation with it
    }
    return dm, model


def _saved(path) -> dict:
    """A checkpoint written by this run's Trainer, loaded without running code from it."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def run(cfg: DictConfig, out_dir: str | Path, choices: dict | None = None) -> dict | None:
    """Trains and evaluates the run ``cfg`` into ``out_dir``; returns the final metrics.

    Returns ``None`` when ``cfg`` resumes a run that had already finished (nothing is rewritten).

    Raises:
        ConfigError: an invalid value (before any work).
        DataError: a missing or malformed data file.
        Diverged: a loss became NaN/inf (the last good checkpoint stays).
    """
    validate(cfg)
    for line in specialisations(choices or {}, cfg):
        print(line, flush=True)
    out_dir = Path(out_dir)
    import lightning as L
    from hydra.utils import instantiate

    from gentwin.training.callbacks import (
        Evaluator,
        FollowBudget,
        LineProgress,
        RunBar,
        RunCheckpoint,
        RunClock,
        SameFolderCheckpointIO,
        ValidateLast,
    )
    from gentwin.training.evaluate import final_evaluation, validation_entries

    _quiet()
    threads = set_threads(cfg.get("threads"))
    L.seed_everything(cfg.seed, verbose=False)
    dm, model = build(cfg)

    entries = {k: instantiate(v) for k, v in cfg.metric.entries.items()}
    monitor = f"val/{cfg.metric.monitor}"
    ckpt_dir = out_dir / "checkpoints"
    common = dict(dirpath=ckpt_dir, auto_insert_metric_name=False, enable_version_counter=False,
                  save_on_train_epoch_end=False)
    smooth = int(cfg.metric.get("smooth", 1))  # > 1: the best checkpoint by the mean of the last validations
    checkpoint = RunCheckpoint(filename="best", monitor=f"{monitor}_smoothed" if smooth > 1 else monitor,
                               mode=cfg.metric.mode, **common)
    # Lightning 2.6 writes save_last only when a best checkpoint was written at that step: a
    # monitor-free callback writes last.ckpt after every validation instead.
    last = RunCheckpoint(filename="last", monitor=None, save_top_k=1, **common)
    clock = RunClock()
    interactive = sys.stdout.isatty() and not os.environ.get("CI")
    validating = validation_entries(entries, cfg.metric.get("final_only"), cfg.metric.monitor)  # costly ones at the end
    callbacks = [Evaluator(validating, cfg.metric.get("figures_every", 1), cfg.metric.monitor, smooth), checkpoint,
                 last,
                 ValidateLast(ckpt_dir / "last.ckpt"), clock, FollowBudget(),
                 *([RunBar(monitor), LineProgress(monitor, log_only=True)] if interactive else [LineProgress(monitor)]),
                 *dm.callbacks()]
    logger = instantiate(cfg.logger, save_dir=str(out_dir))
    # Checkpoints are written through a temporary file in their own folder (gentwin.atomic); what a
    # killed save of an earlier part of this run left there is removed first.
    for path in remove_stale(out_dir):
        print(f"removed {path}, left by a write that was killed", flush=True)
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=logger, default_root_dir=str(out_dir),
                          enable_progress_bar=False, enable_model_summary=False,
                          plugins=[SameFolderCheckpointIO()])

    model.steps_per_epoch = dm.steps_per_epoch(trainer.num_devices * trainer.num_nodes)  # ranks share epochs
    counts = model.parameter_counts()
    n_params, n_keras = counts["trainable"], counts["trainable"] + counts["batchnorm_statistics"]
    keras = f" ({n_keras:,} with batchnorm statistics, as Keras counts)" if n_keras != n_params else ""
    print(f"{dm.describe()}\n{type(model).__name__}: {n_params:,} parameters{keras}, {threads} thread(s)",
          flush=True)
    ckpt_path = cfg.get("ckpt_path")
    resumed_step = _saved(ckpt_path)["global_step"] if ckpt_path else None
    try:
        # weights_only: a checkpoint holds tensors and plain values; a pickle that runs code is refused.
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    except Diverged as e:  # name the likely cause: an input far from unit scale, and the key that fixes it
        raise Diverged(f"{e}{dm.scale_hint()}") from None
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into exit(1); the command says where things are
            raise KeyboardInterrupt from None
        raise
    wall = clock.seconds
    steps, epochs = int(trainer.global_step), int(trainer.current_epoch)
    if not steps and (ckpt_dir / "last.ckpt").exists():  # forked ranks trained: this process did not step
        saved = _saved(ckpt_dir / "last.ckpt")
        steps, epochs = int(saved["global_step"]), int(saved["epoch"]) + 1
        wall = float(saved.get("callbacks", {}).get("RunClock", {}).get("wall_time_s", wall))
    if resumed_step is not None and steps == resumed_step and (out_dir / "metrics.json").exists():
        return None  # a finished run resumed: nothing trained, its results stay as they are

    # The best checkpoint is this run's own checkpoints/best.ckpt, never a path read from a file.
    best = ckpt_dir / "best.ckpt"
    best = str(best) if checkpoint.best_model_path and best.is_file() else ""
    best_epoch = int(_saved(best)["epoch"]) + 1 if best else None
    final = "best" if cfg.get("final_checkpoint", "best") == "best" and best else "last"
    if final == "best":
        model.load_state_dict(_saved(best)["state_dict"])
    figures = int(cfg.metric.get("figures_every", 1)) > 0  # 0: no figures, the final ones included
    metrics, figs, (fake, c) = final_evaluation(model, dm, entries, seed=cfg.seed, figures=figures)
    metrics.update(wall_time_s=wall, steps=steps, epochs=epochs, train_steps_per_second=steps / max(wall, 1e-9))
    if best_epoch is not None:
        metrics["best_epoch"] = best_epoch

    writer = logger.experiment
    import matplotlib.pyplot as plt

    from gentwin.plots.common import stamp

    at = f"best checkpoint, epoch {best_epoch}" if final == "best" else f"last weights, epoch {epochs}"
    for name, fig in figs.items():
        if cfg.metric.monitor in metrics:
            stamp(fig, f"final ({at}): {cfg.metric.monitor} = {metrics[cfg.metric.monitor]:.4g}")
        writer.add_figure(f"final/{name}", fig, global_step=trainer.global_step)
        plt.close(fig)
    params = hparams(cfg, choices or {}) | {"threads": threads}
    logger.log_hyperparams(params, metrics={f"final/{k}": v for k, v in metrics.items()})
    # Lightning wrote {} at fit's end
    write_text(Path(logger.log_dir) / "hparams.yaml", OmegaConf.to_yaml(OmegaConf.create(params)))
    logger.finalize("success")

    with replacing(out_dir / "samples.npz") as f:
        np.savez_compressed(f, x=fake, **({} if c is None else {"c": c}))
    from gentwin.progress import shown

    with shown():  # e.g. leaves: post-processing many images says how far it is
        for suffix, write in list(dm.writers().items())[:1]:  # e.g. leaves: samples.geojson, the geometry
            print(write(fake, out_dir / f"samples{suffix}"))
    from gentwin.training.outcome import outcome_warnings

    said = outcome_warnings(metrics, cfg.metric.monitor, dm.x_raw_val[dm.eval_slice()], fake)
    summary = {"monitor": monitor, "best_checkpoint": best or None, "best_epoch": best_epoch,
               "final_weights": final, "metrics": metrics, "warnings": said}
    write_text(out_dir / "metrics.json", json.dumps(summary, indent=2, sort_keys=True))
    text = dm.summary(dm.real_properties(), dm.properties(fake, c))
    if text:
        print(text)
    return metrics


def beside_floor(metrics: dict, key: str) -> str:
    """``0.0041 (floor 0.0035 ± 0.0010: 1.2x)`` for a metric with a ``<key>_floor``, else the value."""
    value, floor = metrics.get(key, float("nan")), metrics.get(f"{key}_floor")
    if floor is None:
        return f"{value:.4g}"
    std = metrics.get(f"{key}_floor_std")
    spread = f" ± {std:.2g}" if std is not None and std == std else ""
    ratio = f": {value / floor:.2g}x" if floor > 0 else ""
    return f"{value:.4g} (floor {floor:.2g}{spread}{ratio})"


def summary(metrics: dict, monitor: str, out_dir: Path, shown: int = 24) -> str:
    """The end of a run: where it is, the monitored metric with its epoch and budget first, then the
    other top-level metrics, each beside its real-vs-real floor where it has one; a chi2 without a
    floor is left to metrics.json (its scale depends on the binning), and last the run's warnings."""
    try:  # the warnings as metrics.json states them
        said = json.loads((Path(out_dir) / "metrics.json").read_text()).get("warnings") or []
    except (OSError, ValueError):
        said = []
    skip = {monitor, "wall_time_s", "steps", "epochs", "best_epoch", "train_steps_per_second"}
    best = metrics.get("best_epoch")
    at = f"best checkpoint, epoch {best:.0f} of {metrics.get('epochs', 0):.0f}" if best else "last weights"
    lines = [f"\nrun folder:  {out_dir}", f"tensorboard: tensorboard --logdir {out_dir / 'tb'}",
             f"final {monitor} = {beside_floor(metrics, monitor)} ({at}); {metrics.get('steps', 0):.0f} steps in "
             f"{metrics.get('wall_time_s', 0):.1f} s; metrics.json has all {len(metrics)} values"]
    rest = []
    for k in sorted(metrics):
        if k in skip or k.count("/") > 1 or k.endswith(("_nbins", "_ndf", "_floor", "_floor_std")):
            continue
        if f"{k}_floor" not in metrics and (f"{k}_ndf" in metrics or f"{k}_nbins" in metrics):
            continue
        rest.append(f"{k} {beside_floor(metrics, k)}")
    lines.append("  " + ", ".join(rest[:shown]) + (f", ... ({len(rest) - shown} more)" if len(rest) > shown else ""))
    lines += [f"warning: {w}" for w in said]
    return "\n".join(lines)
