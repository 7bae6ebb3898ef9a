"""The run folder: refused when it holds an earlier run's files, claimed atomically, and cleaned of only
what a failed run created (``ValidateFirst``, the Hydra callback of ``configs/hydra/default.yaml``)."""

from __future__ import annotations

import os
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from gentwin.errors import ConfigError
from gentwin.training.validation import validate


class RunFolder:
    """What stood at the single run's folder before Hydra made it, so a failed run removes only its own.

    ``ValidateFirst`` records it before Hydra writes anything; ``remove_created`` is the only
    deletion a run does.
    """

    path: Path | None = None
    before: frozenset[Path] | None = None  # the folder's entries before the run; None: no folder
    parents: list[Path] = []  # folders above it that the run created, innermost first

    @classmethod
    def record(cls, path: Path) -> None:
        cls.path = path
        cls.before = frozenset(path.iterdir()) if path.is_dir() else None
        cls.parents = []
        parent = path.parent
        while not parent.exists():
            cls.parents.append(parent)
            parent = parent.parent

    @classmethod
    def remove_created(cls, out_dir: Path) -> bool:
        """Removes what this run created in ``out_dir``: the folder itself if the run made it, else
        only the entries that were not there before. Returns whether ``out_dir`` was the recorded folder."""
        import shutil

        if cls.path is None or Path(out_dir).absolute() != cls.path:
            return False
        if cls.before is None:
            shutil.rmtree(cls.path)
            for parent in cls.parents:  # date folders the run made, if nothing else is in them now
                try:
                    parent.rmdir()
                except OSError:
                    break
        else:
            for child in set(cls.path.iterdir()) - cls.before:
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        cls.path = None
        return True


def _refuse(message: str) -> None:
    import sys

    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(ConfigError.exit_code)


def _check_folder(path: Path, what: str, resume: bool) -> None:
    if path.exists() and not path.is_dir():
        _refuse(f"{what} {path} is a file, not a folder")
    if not resume and path.is_dir() and any(path.iterdir()):
        hint = "give another hydra.run.dir, or resume=<run folder> to continue a run" if what == "run folder" \
            else "give another hydra.sweep.dir"
        _refuse(f"{what} {path} exists and is not empty: {hint}")


def _resumes_here(config: DictConfig, path: Path) -> bool:
    """Whether the run continues the run in ``path``: ``ckpt_path`` is that folder's own checkpoint (as
    ``resume=`` sets it). A checkpoint of another run starts a new run, which needs a new or empty folder."""
    ckpt = config.get("ckpt_path")
    return bool(ckpt) and Path(str(ckpt)).resolve().parent == (path / "checkpoints").resolve()


def _claim(path: Path, config: DictConfig) -> None:
    """Takes the run folder for this run, atomically: ``os.mkdir`` of its ``.hydra`` folder fails if
    another run given the same folder at the same moment took it first (their files would mix)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path / str(config.hydra.get("output_subdir") or ".hydra"))
    except FileExistsError:
        _refuse(f"run folder {path} was taken by another run started at the same moment: "
                f"give another hydra.run.dir")


def _grid_size(config: DictConfig) -> int | None:
    """The number of jobs of a grid sweep (Hydra's basic sweeper), or ``None`` (a search: its ``n_trials``)."""
    trials = OmegaConf.select(config, "hydra.sweeper.n_trials")
    if trials is not None:
        return int(trials)
    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        return sum(len(batch) for batch in BasicSweeper.split_arguments(parsed, None))
    except Exception:  # a grid Hydra's parser cannot count here: progress without a total
        return None


class ValidateFirst(Callback):
    """Hydra callback: validates a config before Hydra makes its folder (exit 2), and refuses a
    run folder that already holds something (unless resuming it), so no earlier file is lost."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)  # so ${hydra:...} interpolations resolve
        try:
            validate(config)
        except ConfigError as e:
            _refuse(str(e))
        path = Path(config.hydra.run.dir).absolute()
        resume = _resumes_here(config, path)
        _check_folder(path, "run folder", resume=resume)
        RunFolder.record(path)
        if not resume:
            _claim(path, config)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)
        _check_folder(Path(config.hydra.sweep.dir).absolute(), "sweep folder", resume=False)
        from gentwin.progress import Lines

        self.jobs, self.done = _grid_size(config), 0
        self.sweep_lines = Lines("sweep", every=0.0, step=0.0)

    def on_job_end(self, config: DictConfig, job_return=None, **kwargs) -> None:
        """In a sweep run in this process (the basic launcher): jobs done of all, with the sweep's ETA."""
        lines = getattr(self, "sweep_lines", None)
        if lines is None:
            return
        self.done += 1
        if self.jobs:
            lines.update(self.done / self.jobs, f"{self.done}/{self.jobs} jobs", force=True)
        else:
            lines.write(f"sweep: {self.done} jobs done")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        folder = Path(config.hydra.sweep.dir)
        print(f"sweep folder: {folder}\nits table and plots: report {folder}", flush=True)
