"""Entry points: ``run`` (a Hydra app), ``report``, ``sample``. Thin: parse, call, exit codes.

Heavy modules (torch, Lightning) are imported only once a run starts, so ``run --help`` is quick.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

# Importing these registers the resolvers of the configs (folder names, launcher and sweeper presets),
# here and in the sweep's workers.
from gentwin import config, launch  # noqa: F401
from gentwin.errors import EXIT_CONFIG, EXIT_INTERRUPTED, Diverged, GentwinError

CONFIGS = config.CONFIGS


def fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


class _Resume:
    """The run being resumed: its folder and the overrides it will have once the resume succeeds."""

    folder: Path | None = None
    overrides: list[str] = []


def _resume_args(argv: list[str]) -> list[str]:
    """``resume=<run folder>`` -> that run's overrides, its folder and its last checkpoint.

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
    from omegaconf import OmegaConf

    from gentwin.checkpoint import read_checkpoint
    from gentwin.errors import CheckpointError

    try:
        read_checkpoint(ckpt)  # weights_only: a pickle that would run code is refused here
    except CheckpointError as e:
        fail(f"cannot resume {run_dir}: {e}", EXIT_CONFIG)

    old = [o for o in OmegaConf.load(overrides) if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    added = [a for a in rest if not a.startswith("-")]
    _Resume.folder = run_dir
    _Resume.overrides = [o for o in old if o.split("=", 1)[0] not in {a.split("=", 1)[0] for a in added}] + added
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
    from gentwin.config import RunFolder

    try:
        from gentwin.run import run

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


def first_comment(path: Path) -> str:
    """The first comment line of a config file (its one-line description), without ``#``."""
    for line in path.read_text().splitlines():
        text = line.strip()
        if text.startswith("#") and not text.startswith("# @package"):
            return text.lstrip("#").strip()
    return ""


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
             *(f"  {k}={v}  {d}" for k, v, d in top_level_keys()), "",
             "Config groups (group=option), each option with the first line of its file's description:"]
    for group, options in config_groups().items():
        lines.append(f"  {group}")
        width = max(len(o) for o in options)
        for o in options:
            text = first_comment(CONFIGS / group / f"{o}.yaml")
            lines.append(f"    {o:{width}s}  {text if len(text) <= 90 else text[:89] + '…'}".rstrip())
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
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

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
    from gentwin.report import main as report

    sys.exit(report(sys.argv[1:]))


def sample_main() -> None:
    from gentwin.sample import main as sample

    sys.exit(sample(sys.argv[1:]))


def export_main() -> None:
    from gentwin.export import main as export

    sys.exit(export(sys.argv[1:]))
