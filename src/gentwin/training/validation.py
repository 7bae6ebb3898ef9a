"""Validation of a composed config, before any folder is made or heavy module imported.

Rules apply to a key wherever it sits in the tree (``model.latent_dim``, ``model.loss.gp_weight``),
so a new model inherits them by using the shared key names.
"""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from gentwin.errors import ConfigError


def _int(lo):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo), f"an integer >= {lo}"


def _pos():
    return (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0), \
        "a number > 0"


def _nonneg():
    return (lambda v: isinstance(v, int | float) and math.isfinite(v) and v >= 0), "a number >= 0"


def _open01():
    return (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1), "a number in (0, 1)"


def _seed(v) -> bool:  # Lightning's seed_everything and numpy's generators take 0 <= seed < 2**32
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32


def _duration(v) -> bool:
    """Lightning's ``max_time`` string, "DD:HH:MM:SS" as its Timer parses it, longer than zero."""
    import re

    m = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", v.strip()) if isinstance(v, str) else None
    return m is not None and any(int(g) for g in m.groups())


def _devices(v) -> bool:
    if isinstance(v, list):
        return len(v) > 0 and len(set(v)) == len(v) and all(_int(0)[0](d) for d in v)
    return v == "auto" or (_int(-1)[0](v) and v != 0)


def _batches(v) -> bool:  # Lightning: an int counts batches, a float is a fraction of them
    return _int(1)[0](v) or (isinstance(v, float) and 0 < v <= 1)


def _betas(v) -> bool:
    return len(v) == 2 and all(isinstance(b, int | float) and not isinstance(b, bool) and 0 <= b < 1 for b in v)


RULES = {
    "latent_dim": _int(1),
    "critic_steps": _int(1),
    "batch_size": _int(1),
    "max_epochs": _int(1),
    "transforms": _int(1),
    "threads": _int(1),
    "lr": _pos(),
    "critic_lr": _pos(),
    "gp_weight": _nonneg(),
    "n": _int(2),
    "figures_every": _int(0),
    "smooth": _int(1),
    "check_val_every_n_epoch": _int(1),
    "log_every_n_steps": _int(1),
    "ema": _open01(),
    "finite_check": ((lambda v: v in ("step", "deferred")), "'step', 'deferred' or null"),
    # fp16 needs a gradient scaler wrapped around optimizer.step, which the families' manual steps bypass.
    "precision": ((lambda v: str(v) in ("32", "64", "32-true", "64-true", "bf16", "bf16-mixed", "bf16-true")),
                  "32-true, 64-true, bf16-mixed, bf16-true or null (fp16 is not supported)"),
    "betas": (_betas, "a list of two numbers in [0, 1)"),
    "val_fraction": _open01(),
    "hidden": ((lambda v: all(isinstance(h, int) and h >= 1 for h in v)), "a list of integers >= 1"),
    "hidden_features": ((lambda v: all(isinstance(h, int) and h >= 1 for h in v)), "a list of integers >= 1"),
    "seed": (_seed, "an integer in [0, 4294967295]"),
    "max_steps": ((lambda v: _int(-1)[0](v) and v != 0), "an integer >= 1, or -1 (no limit)"),
    "max_time": (_duration, 'a duration "DD:HH:MM:SS" longer than 0 (e.g. 00:02:30:00), or null'),
    "devices": (_devices, "an integer >= 1, -1 (all), auto, or a list of device indices such as [0,1]"),
    "limit_train_batches": (_batches, "an integer >= 1 (batches), a fraction in (0, 1], or null (all)"),
    "mode": ((lambda v: v in ("min", "max")), "min or max"),
    "final_checkpoint": ((lambda v: v in ("best", "last")), "best or last"),
}
NULLABLE = {"critic_lr", "threads", "n", "ema", "check_val_every_n_epoch", "finite_check", "precision", "max_time",
            "limit_train_batches"}
SKIP = {"hydra"}


def _walk(node, path):
    items = node.items() if isinstance(node, DictConfig) else enumerate(node)
    for k, v in items:
        key = f"{path}.{k}" if path else str(k)
        if path == "" and k in SKIP:
            continue
        if isinstance(v, DictConfig | ListConfig) and not (isinstance(v, ListConfig) and str(k) in RULES):
            yield from _walk(v, key)
        else:
            yield str(k), key, v


def check_logger(cfg: DictConfig) -> None:
    """``logger.name``, ``version`` and ``sub_dir`` name folders inside the run folder: one name each, no
    path separator and no ``..`` (``logger.name=../../x`` would write TensorBoard files outside it)."""
    logger = cfg.get("logger") or {}
    for key in ("name", "version", "sub_dir"):
        value = logger.get(key)
        if value is not None and ("/" in str(value) or "\\" in str(value) or str(value) == ".."):
            raise ConfigError(f"invalid value logger.{key}={value}: must be a folder name inside the run folder "
                              f"(no /, \\ or ..)")


def validate(cfg: DictConfig) -> None:
    """Raises ``ConfigError`` on the first invalid value, naming the key and what is allowed."""
    check_logger(cfg)
    for leaf, key, value in _walk(cfg, ""):
        if leaf not in RULES:
            continue
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        if value is None and leaf in NULLABLE:
            continue
        ok, allowed = RULES[leaf]
        try:
            good = value is not None and ok(value)
        except TypeError:
            good = False
        if not good:
            raise ConfigError(f"invalid value {key}={value}: must be {allowed}")
    data = cfg.get("dataset")
    if data is not None and data.get("n") is not None:
        from gentwin.models import batches_per_step  # the model's family says (a GAN: its critic steps)

        per_step = batches_per_step(cfg.get("model"))
        n_train = data.n - max(1, round(data.n * data.get("val_fraction", 0.25)))
        need = data.batch_size * per_step
        if need > n_train:
            raise ConfigError(
                f"invalid value dataset.batch_size={data.batch_size}: with {per_step} batch(es) per step it "
                f"needs {need} training samples, the dataset has {n_train} (dataset.n={data.n})"
            )
    _check_monitor(cfg)
    _check_accelerator(cfg)
    _check_checkpoint(cfg)


#: What ``gentwin.training.evaluate`` logs beside the metric entries' ``<entry>`` and ``<entry>/<key>`` values.
EVALUATOR_KEYS = ("nll", "kl", "finite_fraction", "samples_per_second")


def _check_monitor(cfg: DictConfig) -> None:
    """``metric.monitor`` must be a value the metric group's entries log, or Lightning stops the run at
    its first validation. The keys under an entry depend on the dataset; its name is known now."""
    metric = cfg.get("metric")
    if metric is None or metric.get("monitor") is None or metric.get("entries") is None:
        return
    entries = [str(k) for k in metric.entries]
    if str(metric.monitor).split("/")[0] in [*entries, *EVALUATOR_KEYS]:
        return
    group = OmegaConf.select(cfg, "hydra.runtime.choices.metric")
    if group is None:
        from hydra.core.hydra_config import HydraConfig

        group = HydraConfig.get().runtime.choices.get("metric") if HydraConfig.initialized() else None
    raise ConfigError(
        f"invalid value metric.monitor={metric.monitor}: must be a value logged by metric={group}: "
        f"{', '.join(f'{e}/<key>' for e in entries)} (the keys depend on the dataset; TensorBoard's val/ tab "
        f"lists them), or {', '.join(EVALUATOR_KEYS)}"
    )


def _check_accelerator(cfg: DictConfig) -> None:
    """A GPU accelerator needs a device this machine has (else Lightning raises while building the Trainer)."""
    accelerator = OmegaConf.select(cfg, "trainer.accelerator")
    if accelerator not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available() and not (accelerator == "gpu" and torch.backends.mps.is_available()):
        raise ConfigError(f"invalid value trainer.accelerator={accelerator}: no CUDA device is available on this "
                          f"machine (torch.cuda.is_available() is False); use trainer=cpu")


def _check_checkpoint(cfg: DictConfig) -> None:
    """``ckpt_path`` must be a checkpoint ``run`` wrote, read without running code (``weights_only``)."""
    path = cfg.get("ckpt_path")
    if path is None:
        return
    from gentwin.errors import CheckpointError
    from gentwin.training.checkpoint import read_checkpoint

    try:
        ckpt = read_checkpoint(path, mmap=True)  # mmap: the tensors stay on disk
    except CheckpointError as e:
        why = str(e).removeprefix(f"{Path(path)}: ")
        raise ConfigError(f"invalid value ckpt_path={path}: {why}; must be a run's checkpoints/last.ckpt") from None
    if "global_step" not in ckpt:
        raise ConfigError(f"invalid value ckpt_path={path}: a gentwin checkpoint without its training state "
                          f"(global_step); must be a run's checkpoints/last.ckpt")
