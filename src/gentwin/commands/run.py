"""Entry points: ``run`` (a Hydra app), ``report``, ``sample``. Thin: parse, call, exit codes.

Heavy modules (torch, Lightning) are imported only once a run starts, so ``run --help`` is quick.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

from gentwin.errors import EXIT_CONFIG, EXIT_INTERRUPTED, Diverged, GentwinError

# Importing these registers the resolvers of the configs (folder names, launcher and sweeper presets),
# here and in the sweep's workers.
from gentwin.training import launch  # noqa: F401
from gentwin.training import validation as config

CONFIGS = config.CONFIGS


def fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class _Resume:
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

    from gentwin.errors import ConfigError

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

    from gentwin.errors import ConfigError
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

    from gentwin.errors import ConfigError

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


def _resume_args(argv: list[str]) -> list[str]:
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
        fail(f"cannot resume {run_dir}: expected {ckpt} and {overrides}", EXIT_CONFIG)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from gentwin.errors import CheckpointError, ConfigError
    from gentwin.training.checkpoint import read_checkpoint

    try:
        read_checkpoint(ckpt)  # weights_only: a pickle that would run code is refused here
    except CheckpointError as e:
        fail(f"cannot resume {run_dir}: {e}", EXIT_CONFIG)

    config_dir = _config_dir(rest)
    added = [a for a in rest if not a.startswith("-") and a not in (config_dir,)]
    try:
        old = _folder_overrides(overrides)
        try:
            before = _compose(old, config_dir)
        except Exception as e:
            explained = _explain(e, old)
            raise ConfigError(f"{overrides}: does not compose ({explained[0] if explained else e})") from None
        _check_targets(before, overrides, config_dir)
        _check_unchanged(before, old, added, config_dir)
    except ConfigError as e:
        fail(f"cannot resume {run_dir}: {e}", EXIT_CONFIG)
    try:  # the record keeps the run's own overrides: Hydra's (``hydra.*``) are not recorded, as Hydra does
        task = [o.input_line for o in OverridesParser.create().parse_overrides(added) if not _is_hydra(o)]
        replaced = {_override_key(o) for o in OverridesParser.create().parse_overrides([*added])}
        kept = [o.input_line for o in OverridesParser.create().parse_overrides(old) if _override_key(o) not in replaced]
    except Exception:  # an override that does not parse: Hydra says so below, nothing is recorded
        task, kept = added, old
    _Resume.folder = run_dir
    _Resume.overrides = kept + task
    return old + rest + [f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}", "hydra.output_subdir=null"]


class _Tee(io.TextIOBase):
    """A text stream that also appends what it is given to a log file (terminal redraws left out)."""

    def __init__(self, stream, log):
        self.stream, self.log = stream, log

    def write(self, text: str) -> int:
        self.stream.write(text)
        if "\r" not in text and "\x1b[" not in text:
            self.log.write(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()
        self.log.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self):
        return self.stream.encoding


@contextlib.contextmanager
def _tee(path: Path):
    """``run.log`` keeps what the run prints (stdout and stderr), beside Hydra's own log lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", buffering=1) as log:
        out, err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(out, log), _Tee(err, log)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = out, err


def _task(cfg) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode


    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    ckpt = out_dir / "checkpoints" / "last.ckpt"
    with _tee(out_dir / "run.log"):
        return _run(cfg, hc, out_dir, ckpt, multirun)


def _run(cfg, hc, out_dir: Path, ckpt: Path, multirun: bool) -> float | None:
    from gentwin.training.validation import RunFolder

    try:
        from gentwin.training.fit import run

        with launch.job_resources(cfg, hc, multirun):
            metrics = run(cfg, out_dir, choices=dict(hc.runtime.choices))
    except KeyboardInterrupt:
        kept = f"checkpoints in {ckpt.parent}; continue with: run resume={out_dir}" if ckpt.exists() \
            else "no checkpoint was written yet"
        fail(f"interrupted; {kept}", EXIT_INTERRUPTED)
    except Exception as e:
        if multirun:  # one failed job must not stop the sweep: Hydra records it, `report` lists it
            launch.write_error(out_dir, e)
            raise
        if not isinstance(e, GentwinError):
            raise
        if isinstance(e, Diverged):
            kept = f"the last good checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint had been written yet"
            fail(f"{e}; {kept}", e.exit_code)
        # Nothing was trained: remove what this run made (never a folder that held anything before).
        if not (out_dir / "checkpoints").exists():
            RunFolder.remove_created(out_dir)
        fail(str(e), e.exit_code)
    if metrics is None:  # a resume of a finished run: nothing trained, nothing rewritten
        print(f"{out_dir} had already finished (trainer.max_epochs reached); metrics.json is unchanged. "
              f"To train on, resume with a larger trainer.max_epochs.")
        return None
    if _Resume.folder is not None and _Resume.folder == out_dir:  # the record of the run, now longer
        from omegaconf import OmegaConf

        OmegaConf.save(OmegaConf.create(_Resume.overrides), out_dir / ".hydra" / "overrides.yaml")
    print(summary(metrics, cfg.metric.monitor, out_dir))
    return metrics.get(cfg.metric.monitor)


def summary(metrics: dict, monitor: str, out_dir: Path, shown: int = 24) -> str:
    """The end of a run: where it is, the monitored metric with its epoch and budget first, then the
    other top-level metrics (a chi2 with its degrees of freedom)."""
    skip = {monitor, "wall_time_s", "steps", "epochs", "best_epoch", "train_steps_per_second"}
    value, best = metrics.get(monitor, float("nan")), metrics.get("best_epoch")
    at = f"best checkpoint, epoch {best:.0f} of {metrics.get('epochs', 0):.0f}" if best else "last weights"
    lines = [f"\nrun folder:  {out_dir}", f"tensorboard: tensorboard --logdir {out_dir / 'tb'}",
             f"final {monitor} = {value:.4g} ({at}); {metrics.get('steps', 0):.0f} steps in "
             f"{metrics.get('wall_time_s', 0):.1f} s; metrics.json has all {len(metrics)} values"]
    rest = []
    for k, v in sorted(metrics.items()):
        if k in skip or k.count("/") > 1 or k.endswith(("_nbins", "_ndf")):
            continue
        ndf = metrics.get(f"{k}_ndf", metrics.get(f"{k}_nbins"))
        rest.append(f"{k}={v:.4g}" + (f" ({ndf:.0f} bins)" if ndf is not None else ""))
    lines.append("  " + ", ".join(rest[:shown]) + (f", ... ({len(rest) - shown} more)" if len(rest) > shown else ""))
    return "\n".join(lines)


def config_groups(root: Path = CONFIGS) -> dict[str, list[str]]:
    """``group -> options`` from the config folder (nested groups as ``schedule/lr``)."""
    groups = {}
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        name = str(d.relative_to(root))
        if name in ("hydra", "specialise"):  # Hydra's own node; applied by themselves (listed apart)
            continue
        options = sorted(f.stem for f in d.glob("*.yaml"))
        if options:
            groups[name] = options
    return groups


_ABBREVIATIONS = ("al.", "e.g.", "i.e.", "cf.", "eq.", "eqs.", "Fig.", "vs.", "etc.")


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop that ends a sentence (one followed by a capital letter and not
    after an abbreviation such as "et al."), whole: however long, never cut inside."""
    words = text.split()
    for i, word in enumerate(words[:-1]):
        if word.endswith(".") and words[i + 1][:1].isupper() and not word.endswith(_ABBREVIATIONS):
            return " ".join(words[:i + 1])
    return " ".join(words)


def first_comment(path: Path) -> str:
    """The description of a config file: the first sentence of its leading comment, without ``#``.
    The comment may run over several lines; an indented example line (``#   run ...``) ends it."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#") or line.startswith("#   "):
            if lines:
                break
            continue
        if not line.startswith("# @package"):
            lines.append(line.lstrip("#").strip())
    # a sentence that leads into an example ("..., e.g." or "...:") ends before it
    return first_sentence(" ".join(lines)).removesuffix("e.g.").rstrip(" ,:")


def _wrapped(head: str, text: str, width: int = 100) -> list[str]:
    """``head`` followed by ``text`` wrapped to ``width`` columns, continuation lines under its start:
    a long description is shown whole rather than cut."""
    import textwrap

    return textwrap.wrap(text, width, initial_indent=head, subsequent_indent=" " * len(head),
                         break_long_words=False, break_on_hyphens=False) or [head.rstrip()]


def top_level_keys(path: Path = CONFIGS / "run.yaml") -> list[tuple[str, str, str]]:
    """``(key, default, description)`` of run.yaml's own keys, from the comment above each."""
    out, comment = [], []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif line and not line.startswith((" ", "-")) and ":" in line:
            key, value = line.split(":", 1)
            if key not in ("defaults", "ckpt_path"):
                value = value.strip().replace("${hydra:runtime.choices.model}", "<model>")
                value = value.replace("${hydra:runtime.choices.dataset}", "<dataset>")
                out.append((key, value, " ".join(comment).split(". ")[0].rstrip(".")))
            comment = []
        else:
            comment = []
    return out


def help_text() -> str:
    lines = ["run: train and evaluate a deep generative surrogate (gentwin).", "",
             "Usage: run [group=option ...] [key=value ...]     run -m key=a,b,c ...  (a sweep)", "",
             "Top-level keys (key=value):",
             "  resume=<run folder>  continue an interrupted run from its checkpoints/last.ckpt, in its folder",
             *(line for k, v, d in top_level_keys() for line in _wrapped(f"  {k}={v}  ", d)), "",
             "Config groups (group=option), each option with the first sentence of its file's description:"]
    for group, options in config_groups().items():
        lines.append(f"  {group}")
        width = max(len(o) for o in options)
        for o in options:
            lines += _wrapped(f"    {o:{width}s}  ", first_comment(CONFIGS / group / f"{o}.yaml"))
    lines += ["", "Specialisations, applied by themselves and printed at a run's start (configs/specialise/",
              "<dataset>_<model>.yaml, or a file it includes; ~specialise: off):",
              *config.specialisation_help()]
    lines += ["", "Examples:",
              "  run                                        # the quick default on the CPU",
              "  run model=realnvp dataset=circles          # pick options of groups",
              "  run model.latent_dim=8 optimizer.lr=3e-4   # override values",
              "  run -m model.latent_dim=4,8,16 seed=1,2,3  # a sweep (Hydra multirun); then: report <sweep folder>",
              "  run experiment=toy_mlp_gan_u_shape               # a preset reproducing a report's study",
              "  run resume=outputs/<date>/<time>_<name>    # continue an interrupted run from last.ckpt",
              "", "Show the composed config: run --cfg job      Hydra's own options: run --hydra-help"]
    return "\n".join(lines)


def _close_keys(overrides: list[str], key: str) -> str:
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


def _explain(e: BaseException, overrides: list[str]) -> tuple[str, int] | None:
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
            close = _close_keys(overrides, key)
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


def main() -> None:
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:
        print(help_text())  # Hydra's own help composes every group several times: seconds, not ms
        return
    import hydra

    sys.argv = [sys.argv[0], *_resume_args(args)]
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing: we print one line
    try:
        hydra.main(version_base="1.3", config_path=str(CONFIGS), config_name="run")(_task)()
    except Exception as e:
        explained = None if full_error else _explain(e, sys.argv[1:])
        if explained is None:
            raise
        fail(*explained)


def report_main() -> None:
    from gentwin.commands.report import main as report

    sys.exit(report(sys.argv[1:]))


def sample_main() -> None:
    from gentwin.commands.sample import main as sample

    sys.exit(sample(sys.argv[1:]))


def export_main() -> None:
    from gentwin.training.export import main as export

    sys.exit(export(sys.argv[1:]))
