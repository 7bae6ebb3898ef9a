"""Resources of one job in a sweep: CPU threads, one GPU, and the record of a failure.

Launchers (``configs/hydra/launcher/``) decide how many jobs run at once; this module makes each
job take its share of the machine:

* **threads**: with ``threads=null`` a job takes ``cores // (jobs at once x ranks)`` threads, so
  ``jobs x threads`` never exceeds the cores (two processes that each take every core run many
  times slower than one after the other);
* **one GPU per job**: the joblib and submitit-local launchers start jobs on one machine but assign
  no device. A job *leases* a free GPU (an exclusive ``flock`` on a per-device lock file) for as
  long as it runs and trains on that one only. A lease, not ``job number % GPUs``: joblib hands the
  next job to whichever worker frees first, so job ``k + n`` can start while job ``k`` still runs,
  and a fixed mapping would put both on one device. On SLURM the scheduler assigns the GPUs.

The launcher and sweeper presets' resolvers (``${gentwin_jobs:...}`` ...) are registered by
``gentwin.training.resolvers``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


def cores_owned() -> int:
    """CPU cores this process may run on (its affinity: SLURM's allocation on a cluster)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """Sets torch's intra-op threads (default: the cores owned) and one inter-op thread."""
    import torch

    n = threads or cores_owned()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process (tests, multirun in one process)
        pass
    return n


def visible_gpus() -> list[str]:
    """IDs of the GPUs this process may use: ``CUDA_VISIBLE_DEVICES``, else every device torch sees."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


# -- how many jobs at once, how many threads each ------------------------------------------------
def launcher_kind(launcher: Mapping | None) -> str:
    """``basic``, ``joblib``, ``submitit_local``, ``slurm`` or ``other`` from a launcher config."""
    target = str((launcher or {}).get("_target_", ""))
    if target.endswith("BasicLauncher") or not target:
        return "basic"
    if "joblib" in target.lower():
        return "joblib"
    if target.endswith("LocalLauncher"):
        return "submitit_local"
    if target.endswith("SlurmLauncher"):
        return "slurm"
    return "other"


def jobs_at_once(launcher: Mapping | None, cores: int) -> int:
    """Jobs the launcher runs at once on this machine (1 when each job has a machine share of its own)."""
    kind = launcher_kind(launcher)
    if kind == "joblib":
        n = int(launcher.get("n_jobs") or 1)
        return max(1, n if n > 0 else cores + 1 + n)  # joblib: -1 = all cores, -2 = all but one
    return 1


def default_jobs(accelerator: str, threads: int | None, cores: int, gpus: int) -> int:
    """Parallel jobs for ``hydra/launcher=parallel``: one per GPU, else ``cores // threads`` (>= 1)."""
    if accelerator in ("gpu", "cuda"):
        return max(1, gpus)
    return max(1, cores // max(1, threads or 1))


def job_threads(threads: int | None, jobs: int, ranks: int, cores: int) -> int:
    """Intra-op threads of one process: ``threads`` if given, else the cores split over jobs x ranks."""
    if threads:
        return int(threads)
    return max(1, cores // max(1, jobs * ranks))


def cpu_ranks(trainer: Mapping) -> int:
    """Processes one job starts on the CPU (data-parallel ranks), 1 on accelerators."""
    if str(trainer.get("accelerator", "cpu")) != "cpu":
        return 1
    devices = trainer.get("devices", 1)
    return int(devices) if isinstance(devices, int) and devices > 1 else 1


# -- one GPU per job ------------------------------------------------------------------------------
def pick_device(visible: Sequence[str], taken: set[str]) -> int | None:
    """Index (into ``visible``) of the first device not in ``taken``, or ``None`` when all are taken."""
    for i, d in enumerate(visible):
        if d not in taken:
            return i
    return None


def lock_dir() -> Path:
    """Machine-wide folder of the device lock files (``GENTWIN_DEVICE_LOCKS`` overrides it)."""
    path = Path(os.environ.get("GENTWIN_DEVICE_LOCKS", Path(tempfile.gettempdir()) / "gentwin-devices"))
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            path.chmod(0o1777)  # every user's jobs share the machine's devices
    return path


@contextlib.contextmanager
def lease_device(visible: Sequence[str], locks: Path | None = None, poll: float = 1.0,
                 timeout: float | None = None) -> Iterator[int]:
    """Holds an exclusive lock on one of ``visible`` for the ``with`` block; yields its index.

    Waits (polling every ``poll`` s) while every device is leased; raises ``TimeoutError`` after
    ``timeout`` s. The lock dies with the process, so a killed job frees its device.
    """
    if not visible:
        raise RuntimeError("no GPU visible to lease (CUDA_VISIBLE_DEVICES is empty or no device found)")
    locks = locks or lock_dir()
    start = time.monotonic()
    while True:
        taken: set[str] = set()
        for i, device in enumerate(visible):
            name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in device)
            fd = os.open(locks / f"gpu-{name}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                taken.add(device)
                continue
            try:
                yield i
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if timeout is not None and time.monotonic() - start >= timeout:
            raise TimeoutError(f"all {len(visible)} GPU(s) {list(visible)} stayed leased for {timeout} s")
        time.sleep(poll)


# -- the job's resources, as cli._task applies them -------------------------------------------------
@contextlib.contextmanager
def job_resources(cfg, hc, multirun: bool) -> Iterator[None]:
    """Sets ``cfg.threads`` (when null) to the job's share of the cores and, for a GPU job of a
    local parallel sweep, leases one GPU and sets ``cfg.trainer.devices`` to it."""
    launcher = hc.launcher if multirun else None
    cores = cores_owned()
    jobs = jobs_at_once(launcher, cores)
    trainer = cfg.get("trainer") or {}
    if cfg.get("threads") is None and (jobs > 1 or cpu_ranks(trainer) > 1):
        cfg.threads = job_threads(None, jobs, cpu_ranks(trainer), cores)
    gpu = str(trainer.get("accelerator", "cpu")) in ("gpu", "cuda") and trainer.get("devices", 1) == 1
    if not (multirun and gpu and launcher_kind(launcher) in ("joblib", "submitit_local")):
        yield
        return
    with lease_device(visible_gpus()) as index:
        cfg.trainer.devices = [index]
        yield


def write_error(out_dir: Path, error: BaseException) -> None:
    """``error.txt`` in a failed job's folder: the error on its first line, then the traceback."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ")
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    with contextlib.suppress(OSError):
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "error.txt").write_text(f"{text}\n\n{tb}")
