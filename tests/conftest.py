"""Shared helpers: compose configs in-process, run the CLI in a subprocess, find shared data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning  # noqa: F401  (its log handler binds to this stderr, which in-process calls redirect)
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TPC_DATA = Path(os.environ.get("GENTWIN_TPC_DATA", ROOT.parent / "shared" / "data" / "tpc"))

def _cache_config_files() -> None:
    """Hydra parses every YAML file again at each compose: about 11,000 loads in this suite, 40 s.
    Tests keep each file's parsed config by path, size and modification time and hand out copies, as
    Hydra's own per-compose cache does (``CachingConfigRepository``); a changed file is read anew,
    and files that fail to load are not kept (their error is raised each time)."""
    import copy

    from hydra._internal.sources_registry import SourcesRegistry
    from hydra.core.plugins import Plugins
    from hydra.plugins.config_source import ConfigResult

    Plugins.instance()  # registers the config sources (Hydra's plugin scan imports its own copy of the class)
    FileConfigSource = SourcesRegistry.instance().resolve("file")  # noqa: N806
    load, parsed = FileConfigSource.load_config, {}

    def load_config(self, config_path: str) -> ConfigResult:
        full = os.path.realpath(os.path.join(self.path, self._normalize_file_name(config_path)))
        try:
            st = os.stat(full)
        except OSError:
            return load(self, config_path)  # Hydra's own "Config not found"
        key = (self.provider, self.path, config_path, full, st.st_size, st.st_mtime_ns)
        if key not in parsed:
            parsed[key] = load(self, config_path)
        got = parsed[key]
        return ConfigResult(provider=got.provider, path=got.path, config=copy.deepcopy(got.config),
                            header=dict(got.header), is_schema_source=got.is_schema_source)

    FileConfigSource.load_config = load_config


_cache_config_files()

import gentwin.training  # noqa: E402, F401  (registers the configs' resolvers, as a run does, for tests that compose)

# Tests and CI run single-threaded: two processes that each take both cores run many times slower.
torch.set_num_threads(1)

# Overrides that make any run tiny: a few steps on a few hundred samples.
TINY = ["threads=1", "dataset.n=256", "dataset.batch_size=16", "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1", "trainer.log_every_n_steps=1"]


def gan_default(args: list[str]) -> list[str]:
    """``args`` with ``model=wgan_gp`` last (after ``-m``: Hydra takes its overrides as one list) unless
    they choose a model (or an experiment, or resume a run):
    the tests were written when WGAN-GP was the default model, and keep testing it (the default is now
    RealNVP, configs/run.yaml)."""
    if any(a.lstrip("+~").startswith(("model=", "experiment=", "resume=")) or a.startswith("-") and a != "-m"
           for a in args):
        return list(args)
    return [*args, "model=wgan_gp"]


def compose(overrides: list[str] | None = None):
    """The composed run config for ``overrides`` (as ``run`` would see it, without the hydra node)."""
    overrides = gan_default(overrides or [])
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra_compose(config_name="run", overrides=overrides or [], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} interpolations resolve as in a run
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def fit(cfg, steps: int = 2, limit_val_batches: int = 0, root_dir=None):
    """Validates ``cfg``, builds it and trains ``steps`` steps; asserts the weights moved. ``(dm, model)``."""
    import lightning as L

    from gentwin.training.fit import build
    from gentwin.training.validation import validate

    validate(cfg)
    L.seed_everything(0, verbose=False)
    dm, model = build(cfg)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = L.Trainer(max_steps=steps, limit_val_batches=limit_val_batches, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", num_sanity_val_steps=0, default_root_dir=root_dir)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == steps
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "no update"
    return dm, model


#: float32's rounding step (relative): the unit of tolerances between differently rounded float32 results.
EPS32 = torch.finfo(torch.float32).eps


def assert_rounding_close(got, want, k: float, scale: float | None = None, msg: str = "", dtype=None) -> None:
    """``got`` equals ``want`` up to ``k`` rounding steps at the magnitude ``scale`` (default: the largest ``|want|``).

    For results of computations that round differently: another summation order, kernel (ONNX, TorchScript),
    CPU (AVX2, AVX-512) or thread count. A reordered sum of n terms moves by up to about n eps times the sum
    of the terms' sizes, so the bound is absolute, ``k * eps * scale``, with eps of the coarser dtype
    (float32: 1.19e-7), or of ``dtype`` where a value passed through it; not relative per element, which
    fails where terms cancel to a small entry. The caller says in a comment why its ``k`` (terms summed,
    layers, rounding of a stored value).
    """
    import numpy as np

    got, want = (a.detach() if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a)) for a in (got, want))
    eps = max(torch.finfo(t).eps for t in (got.dtype, want.dtype, dtype or got.dtype))
    scale = float(want.abs().max() if scale is None else torch.as_tensor(scale).detach())
    torch.testing.assert_close(got.double(), want.double(), rtol=0, atol=k * eps * scale,
                               msg=lambda m: f"{msg}{': ' if msg else ''}{m} (tolerance {k} eps x {scale:.3g})")


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def cli(*args: str, cwd: Path, timeout: float = 300, isolated: bool = False):
    """Runs a console script (``run``, ``report``, ``sample``, ...) in ``cwd`` as a user would.

    In this process by default: the script's entry point is called with its ``sys.argv``, working
    folder and environment, its output captured, and ``SystemExit`` taken as the exit code, so that a
    test pays torch's and Lightning's import (about 5 s) once, not per call. ``isolated=True`` (or
    ``GENTWIN_TEST_SUBPROCESS=1``) runs it in a subprocess instead: for what needs a fresh process
    (DDP and launcher workers, warnings shown once per process, signals).

    Returns:
        An object with ``returncode``, ``stdout`` and ``stderr``, as ``subprocess.run`` gives.
    """
    env = {"CI": "1", "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
    if args[0] == "run":
        args = (args[0], *gan_default(list(args[1:])))
    if isolated or os.environ.get("GENTWIN_TEST_SUBPROCESS") == "1":
        exe = Path(sys.executable).with_name(args[0])
        return subprocess.run([str(exe), *args[1:]], cwd=cwd, env=dict(os.environ, **env), capture_output=True,
                              text=True, timeout=timeout)
    return _in_process(args[0], list(args[1:]), Path(cwd), env)


def entry_point(name: str):
    """The function console script ``name`` calls, as this checkout's pyproject.toml names it: the code
    under test, whichever copy of gentwin is installed (an install made before a module moved names
    the old place). A script pyproject.toml lacks is looked up in the installed metadata."""
    import importlib
    from importlib.metadata import entry_points

    import tomllib

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"].get(name)
    if target is None:
        (entry,) = [e for e in entry_points(group="console_scripts", name=name) if e.dist.name == "gentwin"]
        return entry.load()
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _in_process(name: str, argv: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """A console script's entry point called here, every piece of process state it may change restored.

    What the script writes reaches its captured output as in a new process: warnings are shown with
    the interpreter's default filters (not pytest's), logging handlers that write to the terminal
    (Lightning's, bound to stderr at import) write to the captured streams, and records no handler
    takes reach the captured stderr (pytest's log capture is lifted during the call).
    """
    import contextlib
    import io
    import logging
    import random
    import traceback
    import warnings

    import numpy as np
    from hydra.core.global_hydra import GlobalHydra

    entry = entry_point(name)
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    threads = torch.get_num_threads()
    loggers = [logging.getLogger()] + [v for v in logging.Logger.manager.loggerDict.values()
                                       if isinstance(v, logging.Logger)]
    saved_log = {lg: (lg.level, lg.disabled, lg.propagate, lg.handlers[:]) for lg in loggers}
    disabled = logging.root.manager.disable
    rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())  # noqa: NPY002
    out, err, code = io.StringIO(), io.StringIO(), 0
    kind = {sys.__stdout__: "out", sys.stdout: "out", sys.__stderr__: "err", sys.stderr: "err", **_CAPTURED}
    streams = {h: h.stream for lg in loggers for h in lg.handlers
               if type(h) is logging.StreamHandler and h.stream in kind}
    for h, stream in streams.items():
        h.setStream(out if kind[stream] == "out" else err)
    # A new process's root logger has no handler: records nobody handles reach stderr through
    # logging.lastResort, not pytest's capture (restored below with every logger's handlers).
    logging.root.handlers[:] = []
    os.environ.update(env)
    sys.argv = [name, *argv]
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.resetwarnings()  # a new interpreter's filters, shown on (the captured) stderr
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.simplefilter("ignore", category)
            warnings.showwarning = warnings._showwarning_orig
            try:
                entry()
            except SystemExit as e:
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
                code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
            except KeyboardInterrupt:
                raise
            except BaseException:  # what the interpreter prints for an uncaught exception, and its code
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
        for lg, (level, off, propagate, handlers) in saved_log.items():
            for h in lg.handlers:
                if h not in handlers:
                    h.close()
            lg.setLevel(level)
            lg.disabled, lg.propagate, lg.handlers[:] = off, propagate, handlers
        for h, stream in streams.items():
            h.setStream(stream)
        logging.disable(disabled)
        torch.set_rng_state(rng[0])
        np.random.set_state(rng[1])  # noqa: NPY002
        random.setstate(rng[2])
        GlobalHydra.instance().clear()
        _CAPTURED.update({out: "out", err: "err"})
    return subprocess.CompletedProcess([name, *argv], code, out.getvalue(), err.getvalue())


class Forked:
    """A console script run in a child forked from this process, for tests that signal it mid-run.

    The child calls the entry point as ``cli`` does in this process (torch and Lightning already
    imported: about 6 s less than a new interpreter) and is a real process: SIGKILL and SIGINT reach
    it as they would a user's run. ``wait`` gives its exit code as ``Popen`` does (minus the signal
    that ended it) and ``stdout``/``stderr`` its captured output, written when it exits.
    """

    def __init__(self, *args: str, cwd: Path):
        if args[0] == "run":
            args = (args[0], *gan_default(list(args[1:])))
        import tempfile

        self._files = [Path(tempfile.mkstemp(prefix="gentwin-forked-")[1]) for _ in range(2)]
        self.returncode = None
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns into pytest
            code = 1
            try:  # (nothing left in the child may flush pytest's buffers: os._exit)
                import signal

                # Ctrl-C raises KeyboardInterrupt, as in a run started from a terminal (this process may
                # ignore SIGINT: a non-interactive shell's background job does).
                signal.signal(signal.SIGINT, signal.default_int_handler)
                env = {"CI": "1", "HYDRA_FULL_ERROR": "0", "OMP_NUM_THREADS": "1"}
                done = _in_process(args[0], list(args[1:]), Path(cwd), env)
                self._files[0].write_text(done.stdout)
                self._files[1].write_text(done.stderr)
                code = done.returncode
            finally:
                os._exit(code)

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def wait(self, timeout: float = 120) -> int:
        import time

        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                os.kill(self.pid, 9)
                self.wait()
                raise TimeoutError(f"the forked run did not end in {timeout} s")
            time.sleep(0.02)
        self._output(0), self._output(1)  # read, and the files removed
        return self.returncode

    @property
    def stdout(self) -> str:
        return self._output(0)

    @property
    def stderr(self) -> str:
        return self._output(1)

    def _output(self, i: int) -> str:
        if self.poll() is None:
            return ""
        if isinstance(self._files[i], Path):
            text = self._files[i].read_text()
            self._files[i].unlink()
            self._files[i] = text
        return self._files[i]


#: The terminal streams a logging handler may hold: pytest's at this import (Lightning binds its
#: handler to stderr when imported, here) and the buffers of earlier in-process calls.
_CAPTURED: dict = {sys.stdout: "out", sys.stderr: "err"}


def run_dirs(root: Path) -> list[Path]:
    """Run folders (those holding a .hydra folder) below ``root``."""
    return sorted(p.parent for p in root.glob("**/.hydra"))


_ONNX_REGISTRIES: dict = {}


@pytest.fixture(scope="module")
def onnx_registry_once():
    """torch's ONNX exporter builds its operator registry anew for every export (about 1 s of a 2 s
    export); the modules that export models build it once between them. The registry is the same
    function's result (it is only changed when a custom translation table is given, and gentwin gives
    none). Not used by the leaf run's ``export-model``, whose check that stderr stays quiet needs the
    build (it logs the operators it skips)."""
    from torch.onnx._internal.exporter import _registration

    original = _registration.ONNXRegistry.from_torchlib  # bound to the class

    def from_torchlib(cls, *args, **kwargs):
        key = (cls, args, tuple(sorted(kwargs.items())))
        if key not in _ONNX_REGISTRIES:
            _ONNX_REGISTRIES[key] = original(*args, **kwargs)
        return _ONNX_REGISTRIES[key]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_registration.ONNXRegistry, "from_torchlib", classmethod(from_torchlib))
        yield


@pytest.fixture
def tpc_file() -> Path:
    path = TPC_DATA / "digits_v4plus_shortFixedPt.dat"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path
