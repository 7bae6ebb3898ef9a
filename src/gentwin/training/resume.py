"""``run resume=<run folder>``: a run continued from its ``checkpoints/last.ckpt``, in its folder.

A resume takes from the folder only the run's own overrides of gentwin's configs, checked before
anything is built; the command line may change only the budget and the devices.
"""

from __future__ import annotations

from pathlib import Path

from gentwin.errors import CheckpointError, ConfigError
from gentwin.training.configs import CONFIGS
from gentwin.training.hydra_errors import explain


class Resumed:
    """The run being resumed: its folder and the overrides it will have once the resume succeeds."""

    folder: Path | None = None
    overrides: list[str] = []


#: What a resume may change: the budget and the devices it runs on. Everything else (model, optimizer,
#: schedules, dataset, seed, ...) the checkpoint restores, so a changed value would be recorded, not used.
RESUME_MAY_CHANGE = ("trainer.max_epochs", "trainer.max_steps", "trainer.max_time", "threads", "trainer.devices",
                     "trainer.accelerator")


def _override_key(override) -> str:
    """The config key (or group) a parsed override sets, with its package (``group@pkg``) if any."""
    return override.key_or_group + (f"@{override.package}" if override.package is not None else "")


def _is_hydra(override) -> bool:
    """Whether a parsed override sets Hydra's own node (``hydra.*``, ``hydra/<group>``, ``...@hydra``)."""
    key = override.key_or_group
    package = (override.package or "").removeprefix("_global_").lstrip(".")
    return key == "hydra" or key.startswith(("hydra.", "hydra/")) or package.split(".")[0] == "hydra"


def _folder_overrides(path: Path) -> list[str]:
    """The run's own overrides from its ``.hydra/overrides.yaml``, read strictly: a YAML list of
    strings, each one override of a config value or group (``ckpt_path`` and ``hydra.run.dir`` are
    dropped: the resume sets them). Hydra writes only the run's task overrides there, so an override
    of Hydra's node (callbacks, launcher, logging, ...) is refused: it would run code of the file's choosing.

    Raises:
        ConfigError: naming the file and the entry.
    """
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser


    try:
        items = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: not a YAML list of overrides ({' '.join(str(e).split())[:200]})") from None
    if not isinstance(items, list) or not all(isinstance(o, str) for o in items):
        raise ConfigError(f"{path}: not a list of override strings (key=value)")
    parser, kept = OverridesParser.create(), []
    for text in items:
        try:
            (override,) = parser.parse_overrides([text])
        except Exception:  # Hydra's OverrideParseException, or an empty line
            raise ConfigError(f"{path}: {text!r} is not an override (key=value, group=option)") from None
        if override.key_or_group in ("ckpt_path", "hydra.run.dir"):
            continue
        if _is_hydra(override):
            raise ConfigError(f"{path}: refused: {text!r} sets Hydra's own config, which a resume does not take "
                              f"from a folder (only the run's overrides of gentwin's configs)")
        if override.is_sweep_override():
            raise ConfigError(f"{path}: {text!r} is a sweep, not one run's value")
        kept.append(text)
    return kept


def _compose(overrides: list[str], config_dir: str | None):
    """The config ``run`` composes from ``overrides`` (Hydra's node included, nothing resolved or built)."""
    from hydra import compose, initialize_config_dir

    if config_dir is not None:  # as `--config-dir` adds it to the search path
        overrides = [*overrides, f"hydra.searchpath=[file://{Path(config_dir).absolute()}]"]
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return compose(config_name="run", overrides=overrides, return_hydra_config=True)


def _hydra_defaults_targets() -> frozenset[str]:
    """The classes Hydra's own default ``hydra`` node names (basic launcher and sweeper, logging handlers)."""
    from omegaconf import OmegaConf

    from gentwin.training.checkpoint import named_targets

    node = {"hydra": OmegaConf.to_container(_compose([], None).hydra, resolve=False)}
    return frozenset(t for _, t in named_targets(node) if isinstance(t, str))


def _check_targets(cfg, path: Path, config_dir: str | None) -> None:
    """Raises ``ConfigError`` when the config composed from a folder's overrides names a class or
    function (``_target_``, anywhere, Hydra's node included) that neither gentwin's configs (and the
    user's ``--config-dir``) nor Hydra's defaults name: the same rule as for checkpoints."""
    from omegaconf import OmegaConf

    from gentwin.training.checkpoint import config_targets, named_targets

    allowed = config_targets() | _hydra_defaults_targets()
    if config_dir is not None:
        allowed |= config_targets(Path(config_dir).absolute())
    for key, target in named_targets(OmegaConf.to_container(cfg, resolve=False)):
        if not isinstance(target, str) or target not in allowed:
            raise ConfigError(f"{path}: refused: its overrides set {key}={target!r}, which is not a class or "
                              f"function that gentwin's configs name")


def _flat(node, prefix: str = "") -> dict:
    """``dotted key -> value`` of a plain config's leaves (a list is one leaf)."""
    out = {}
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _check_unchanged(before, old: list[str], added: list[str], config_dir: str | None) -> None:
    """Raises ``ConfigError`` naming the first override of ``added`` that changes a value outside
    ``RESUME_MAY_CHANGE`` in the config ``before`` (composed from the run's own overrides ``old``).
    An ``added`` that does not compose is left to Hydra's own one-line error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf


    if not added:
        return
    try:
        after = _compose([*old, *added], config_dir)
    except Exception:  # Hydra reports it (a key the config lacks, ...) before building anything
        return
    a, b = ({k: v for k, v in _flat(OmegaConf.to_container(c, resolve=False)).items() if not k.startswith("hydra.")}
            for c in (before, after))
    changed = sorted(k for k in a.keys() | b.keys() if k not in RESUME_MAY_CHANGE and a.get(k, ...) != b.get(k, ...))
    if not changed:
        return
    # Named: the first override that changes a value under its own key (``model=vae`` changes
    # model.*), else the first value changed (``experiment=...`` sets keys anywhere).
    own = [o for o in OverridesParser.create().parse_overrides(added) if not _is_hydra(o)]
    causes = [(o.input_line, k) for o in own for k in changed
              if (k + ".").startswith(o.key_or_group.replace("/", ".") + ".")]
    cause, key = causes[0] if causes else (" ".join(o.input_line for o in own), changed[0])
    had = f"{key}={a[key]}" if key in a else f"no {key}"
    raise ConfigError(f"{cause} would change {key}, which the checkpoint restores (the run has {had}); a resume "
                      f"may change only {', '.join(RESUME_MAY_CHANGE)}: start a new run for other values")


def _config_dir(argv: list[str]) -> str | None:
    """The ``--config-dir``/``-cd`` given on the command line, if any."""
    for i, a in enumerate(argv):
        if a.startswith("--config-dir="):
            return a.split("=", 1)[1]
        if a in ("--config-dir", "-cd") and i + 1 < len(argv):
            return argv[i + 1]
    return None


def resume_args(argv: list[str]) -> list[str]:
    """``resume=<run folder>`` -> that run's overrides, its folder and its last checkpoint.

    A resume takes from the folder only the run's own overrides of gentwin's configs, checked before
    anything is built (exit 2 otherwise): no override of Hydra's node, no class or function that
    gentwin's configs do not name, and the checkpoint read with ``weights_only``. The command line may
    change only ``RESUME_MAY_CHANGE`` (the budget, the devices): the checkpoint restores the rest.
    Hydra writes no ``.hydra/`` for the resumed part (``hydra.output_subdir=null``): the folder's
    record changes only once the resume has succeeded (``_task``).
    """
    rest = [a for a in argv if not a.startswith("resume=")]
    folders = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not folders:
        return argv
    run_dir = Path(folders[-1]).absolute()
    ckpt, overrides = run_dir / "checkpoints" / "last.ckpt", run_dir / ".hydra" / "overrides.yaml"
    if not ckpt.exists() or not overrides.exists():
        raise ConfigError(f"cannot resume {run_dir}: expected {ckpt} and {overrides}")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from gentwin.training.checkpoint import read_checkpoint

    try:
        read_checkpoint(ckpt)  # weights_only: a pickle that would run code is refused here
    except CheckpointError as e:
        raise ConfigError(f"cannot resume {run_dir}: {e}") from None

    config_dir = _config_dir(rest)
    added = [a for a in rest if not a.startswith("-") and a not in (config_dir,)]
    try:
        old = _folder_overrides(overrides)
        try:
            before = _compose(old, config_dir)
        except Exception as e:
            explained = explain(e, old)
            raise ConfigError(f"{overrides}: does not compose ({explained[0] if explained else e})") from None
        _check_targets(before, overrides, config_dir)
        _check_unchanged(before, old, added, config_dir)
    except ConfigError as e:
        raise ConfigError(f"cannot resume {run_dir}: {e}") from None
    try:  # the record keeps the run's own overrides: Hydra's (``hydra.*``) are not recorded, as Hydra does
        task = [o.input_line for o in OverridesParser.create().parse_overrides(added) if not _is_hydra(o)]
        replaced = {_override_key(o) for o in OverridesParser.create().parse_overrides([*added])}
        kept = [o.input_line for o in OverridesParser.create().parse_overrides(old) if _override_key(o) not in replaced]
    except Exception:  # an override that does not parse: Hydra says so below, nothing is recorded
        task, kept = added, old
    Resumed.folder = run_dir
    Resumed.overrides = kept + task
    return old + rest + [f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}", "hydra.output_subdir=null"]


def record(out_dir: Path) -> None:
    """After a resumed run succeeded: its ``.hydra/overrides.yaml`` holds the overrides it now has."""
    if Resumed.folder is not None and Resumed.folder == out_dir:
        from omegaconf import OmegaConf

        OmegaConf.save(OmegaConf.create(Resumed.overrides), out_dir / ".hydra" / "overrides.yaml")
