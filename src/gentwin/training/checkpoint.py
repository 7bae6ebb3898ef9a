"""A trained model from its checkpoint alone: no config folder, no training data.

``GenerativeModel.on_save_checkpoint`` stores ``checkpoint["gentwin"]``: the resolved model and
transform configs, ``shape``, ``cond_dim``, ``cond_names`` and the dataset config. That is enough to
rebuild the module, load its weights (the fitted transform is part of them) and sample in data space.

A checkpoint runs no code: it is read with ``weights_only=True``, and the configs in it may name
only the classes and functions that gentwin's own configs name (``allowed_targets``); a file that
asks for anything else is refused before anything is built.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import OmegaConf

from gentwin.errors import CheckpointError
from gentwin.training.configs import CONFIGS

if TYPE_CHECKING:  # Lightning is imported only once a model is built: refusing a file stays quick
    from gentwin.models.base import GenerativeModel

#: Keys of ``checkpoint["gentwin"]`` needed to rebuild a model.
REQUIRED = ("model", "shape", "cond_dim")


#: Module prefixes a checkpoint's ``_target_`` may come from (and then only as named by the configs).
OWN_PREFIXES = ("gentwin.", "zuko.")


@functools.cache
def allowed_targets(configs: Path = CONFIGS) -> frozenset[str]:
    """Every ``_target_`` of gentwin's own model, dataset, schedule, metric, preset configs (``OWN_PREFIXES``)."""
    found = set()
    for group in ("model", "dataset", "specialise", "experiment", "schedule", "metric"):
        for f in sorted((configs / group).rglob("*.yaml")):
            found.update(_targets(OmegaConf.to_container(OmegaConf.load(f), resolve=False)))
    return frozenset(t for t in found
                     if t.startswith(OWN_PREFIXES) and not t.startswith("gentwin.training.run_folder."))


@functools.cache
def config_targets(configs: Path = CONFIGS) -> frozenset[str]:
    """Every ``_target_`` that any of gentwin's own config files names (optimizers, the trainer, the
    logger and Hydra callbacks included): what a resumed run's config may build (``cli._resume_args``)."""
    found = set()
    for f in sorted(Path(configs).rglob("*.yaml")):
        found.update(_targets(OmegaConf.to_container(OmegaConf.load(f), resolve=False)))
    return frozenset(t for t in found if isinstance(t, str))


def _targets(node):
    yield from (target for _, target in named_targets(node))


#: Keys with which Python's logging configuration (Hydra's ``hydra.job_logging``, ``hydra.hydra_logging``)
#: names a class or factory to call.
LOGGING_CALLABLES = ("()", "class")


def named_targets(node, key: str = ""):
    """``(dotted key, value)`` of every ``_target_`` in config ``node`` (plain containers), and of every
    ``()`` and ``class`` under ``hydra``'s logging configs, where ``logging.config.dictConfig`` calls them."""
    logging_config = key.startswith(("hydra.job_logging", "hydra.hydra_logging"))
    if isinstance(node, dict):
        for k, v in node.items():
            path = f"{key}.{k}" if key else str(k)
            if k == "_target_" or (logging_config and k in LOGGING_CALLABLES):
                yield path, v
            else:
                yield from named_targets(v, path)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from named_targets(v, f"{key}[{i}]")


def check_targets(node, path: str | Path, what: str) -> None:
    """Raises ``CheckpointError`` (naming the file and the target) if config ``node`` read from
    checkpoint ``path`` names a ``_target_`` that is not one of ``allowed_targets()``."""
    allowed = allowed_targets()
    for target in _targets(node):
        if not isinstance(target, str) or target not in allowed:
            raise CheckpointError(f"{path}: refused: its {what} config asks to build {target!r}, which is not "
                                  f"one of gentwin's own classes")


def safe_instantiate(node, path: str | Path, what: str, **kwargs):
    """``hydra.utils.instantiate(node, **kwargs)`` for a config read from checkpoint ``path``, once
    ``check_targets`` has passed."""
    from hydra.utils import instantiate

    check_targets(node, path, what)
    return instantiate(node, **kwargs)


def read_checkpoint(path: str | Path, mmap: bool = False) -> dict:
    """The checkpoint dict of ``path``, checked to be a gentwin checkpoint.

    Loaded with ``weights_only=True``: a checkpoint holds tensors and plain containers only, and an
    arbitrary pickle is refused rather than executed. ``mmap=True`` leaves the tensors on disk (a
    quick check of a large file).

    Raises:
        CheckpointError: naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception:  # torch.load on an arbitrary file raises KeyError, UnpicklingError, EOFError, ...
        raise CheckpointError(f"{path}: not a gentwin checkpoint (torch.load cannot read it as a checkpoint "
                              f"of tensors and plain values)") from None
    info = ckpt.get("gentwin") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path}: not a gentwin checkpoint (no 'gentwin' entry; written by `run`?)")
    missing = [k for k in REQUIRED if k not in info]
    if missing:
        raise CheckpointError(f"{path}: gentwin checkpoint without {missing}")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu") -> GenerativeModel:
    """Rebuilds the model saved in ``path`` and loads its weights, in eval mode.

    Returns:
        The module, with ``build_info`` (model, transform, dataset configs, ``cond_names``) restored.

    Raises:
        CheckpointError: the file is not a gentwin checkpoint or its weights do not fit its config.
    """
    ckpt = read_checkpoint(path)
    info = ckpt["gentwin"]
    for what in ("model", "transform", "cond_transform"):  # all checked before any is built
        check_targets(info.get(what), path, what)
    transform = safe_instantiate(info["transform"], path, "transform") if info.get("transform") else None
    cond_transform = safe_instantiate(info["cond_transform"], path, "cond_transform") if info.get("cond_transform") \
        else None
    model = safe_instantiate(info["model"], path, "model", shape=tuple(info["shape"]),
                             cond_dim=int(info["cond_dim"]), transform=transform, cond_transform=cond_transform)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the saved model config ({str(e).splitlines()[0]})") from None
    model.build_info = {k: info[k] for k in ("model", "transform", "cond_transform", "cond_names", "cond_range",
                                             "cond_input_range", "units", "dataset", "metric") if k in info}
    return model.to(device).eval()


def metric_entries(info: dict, checkpoint: str) -> dict:
    """The metric group stored in the checkpoint (or its run folder's config), built through the allow-list."""
    node = info.get("metric")
    saved = Path(checkpoint).resolve().parent.parent / ".hydra" / "config.yaml"
    if node is None and saved.is_file():
        node = OmegaConf.to_container(OmegaConf.load(saved).get("metric") or {}, resolve=False) or None
    if not node:
        return {}
    return {k: safe_instantiate(v, checkpoint, "metric") for k, v in (node.get("entries") or {}).items()}
