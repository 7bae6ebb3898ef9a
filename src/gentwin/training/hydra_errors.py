"""Hydra's errors around a run (composition, overrides, YAML syntax, a failed sweep job) as one line
and an exit code, with "did you mean" for a misspelt key."""

from __future__ import annotations

from gentwin.errors import EXIT_CONFIG, GentwinError
from gentwin.training.configs import CONFIGS


def close_keys(overrides: list[str], key: str) -> str:
    """`` did you mean ...`` for an unknown dotted ``key``: its close siblings in the composed config."""
    import difflib

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    parent, _, leaf = key.rpartition(".")
    plain = [o for o in overrides if "=" in o and not o.startswith("-") and o.split("=", 1)[0].lstrip("+~") != key]
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose(config_name="run", overrides=plain)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        keys = [str(k) for k in node.keys()]
    except Exception:  # the other overrides may not compose either: then no suggestion
        return ""
    close = difflib.get_close_matches(leaf, keys, n=3, cutoff=0.6)
    if close:
        return "; did you mean " + " or ".join(f"{parent + '.' if parent else ''}{k}" for k in close) + "?"
    return f"; the keys of {parent or 'the config'} are: {', '.join(sorted(keys))}" if len(keys) <= 40 else ""


def explain(e: BaseException, overrides: list[str]) -> tuple[str, int] | None:
    """One line (and the exit code) for an error Hydra raises before or around the run, else ``None``."""
    import re

    import yaml
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
        SearchPathException,
    )

    for err in (e, e.__cause__, e.__context__):
        if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
            mark = err.problem_mark
            return f"{mark.name}:{mark.line + 1}:{mark.column + 1}: YAML syntax error: {err.problem}", EXIT_CONFIG
    text = str(e).strip()
    if isinstance(e, ConfigCompositionException):
        m = re.match(r"Could not override '([^']+)'", text)
        if m:
            key = m.group(1)
            close = close_keys(overrides, key)
            new_key = "" if "did you mean" in close else f" (a key the config lacks is added with +{key}=...)"
            return f"{key} is not a key of the config{close}{new_key}", EXIT_CONFIG
    if isinstance(e, ConfigCompositionException | MissingConfigException):  # Hydra's text lists the options
        return " ".join(text.split("Config search path")[0].replace("In 'run': ", "").split()), EXIT_CONFIG
    if isinstance(e, SearchPathException):  # "Additional config directory '<path>' not found"
        return f"--config-dir: {text} (it must name an existing folder of config files)", EXIT_CONFIG
    if isinstance(e, OverrideParseException):
        return f"cannot parse the override: {text.splitlines()[0]} (syntax: key=value, group=option)", EXIT_CONFIG
    if isinstance(e, GentwinError):  # a sweep job failed (each job's folder has error.txt)
        return f"a job of the sweep failed: {text.splitlines()[0]} (error.txt in each failed job's folder; " \
               f"`report <sweep folder>` lists them)", e.exit_code
    return None
