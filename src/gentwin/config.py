"""Validation of a composed config, before any folder is made or heavy module imported.

Rules apply to a key wherever it sits in the tree (``model.latent_dim``, ``model.loss.gp_weight``),
so a new model inherits them by using the shared key names.
"""

from __future__ import annotations

import math

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from gentwin.errors import ConfigError


def _int(lo):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo), f"an integer >= {lo}"


def _pos():
    return (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0), \
        "a number > 0"


def _nonneg():
    return (lambda v: isinstance(v, int | float) and math.isfinite(v) and v >= 0), "a number >= 0"


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
    "val_fraction": ((lambda v: isinstance(v, int | float) and 0 < v < 1), "a number in (0, 1)"),
    "hidden": ((lambda v: all(isinstance(h, int) and h >= 1 for h in v)), "a list of integers >= 1"),
    "hidden_features": ((lambda v: all(isinstance(h, int) and h >= 1 for h in v)), "a list of integers >= 1"),
}
NULLABLE = {"critic_lr", "threads", "n"}
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


def validate(cfg: DictConfig) -> None:
    """Raises ``ConfigError`` on the first invalid value, naming the key and what is allowed."""
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
        per_step = (cfg.get("model") or {}).get("critic_steps", 1) or 1
        n_train = data.n - max(1, round(data.n * data.get("val_fraction", 0.25)))
        need = data.batch_size * per_step
        if need > n_train:
            raise ConfigError(
                f"invalid value dataset.batch_size={data.batch_size}: with {per_step} batch(es) per step it "
                f"needs {need} training samples, the dataset has {n_train} (dataset.n={data.n})"
            )


class ValidateFirst(Callback):
    """Hydra callback: validates a single run's config before Hydra makes its folder (exit 2)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        import sys

        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)  # so ${hydra:...} interpolations resolve
        try:
            validate(config)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2)
