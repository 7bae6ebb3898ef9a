"""The resolvers gentwin's configs use (``${gentwin_safe:...}`` in folder names, ``${gentwin_div:a,b}``,
and the launcher and sweeper presets' ``${gentwin_jobs:...}``, ``${gentwin_gpus_per_job:...}``,
``${gentwin_direction:...}``, ``${gentwin_sqlite:...}``). Importing this module registers them: the
``run`` command imports it, in the launching process and in every worker of a sweep.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from gentwin.training.launch import cores_owned, default_jobs, visible_gpus


def safe_name(value) -> str:
    """``value`` as one readable folder name: path separators percent-encoded, at most 200 bytes.

    Used for run and job folder names built from user values (``name``, a sweep's overrides), so
    that ``name=../../x`` or ``dataset.path=../data/a.dat`` cannot climb out of outputs/ and no two
    jobs of a sweep share a folder (the job number leads each name). A long name keeps its start and
    gets a short hash of the whole, so it stays unique.
    """
    import hashlib

    text = str(value)
    safe = text.replace("/", "%2F").replace("\\", "%5C").replace("\0", "")
    if safe in ("", ".", ".."):
        safe = safe.replace(".", "%2E") or "_"
    if len(safe.encode()) > 200:  # file systems allow 255 bytes a name
        safe = f"{safe.encode()[:180].decode(errors='ignore')}~{hashlib.sha1(text.encode()).hexdigest()[:10]}"
    return safe


if not OmegaConf.has_resolver("gentwin_safe"):
    OmegaConf.register_new_resolver("gentwin_safe", safe_name)
# ``${gentwin_div:a,b}`` = a / b: a value that follows another, e.g. a KL weight set per latent size.
if not OmegaConf.has_resolver("gentwin_div"):
    OmegaConf.register_new_resolver("gentwin_div", lambda a, b: float(a) / float(b))


# -- the launcher and sweeper presets' -----------------------------------------------------------------------
def _jobs(accelerator: str = "cpu", threads: int | None = None) -> int:
    gpus = len(visible_gpus()) if accelerator in ("gpu", "cuda") else 0
    return default_jobs(accelerator, threads, cores_owned(), gpus)


def _gpus_per_job(accelerator: str = "cpu", devices=1) -> int:
    return (int(devices) if isinstance(devices, int) else 1) if accelerator in ("gpu", "cuda") else 0


def _direction(mode: str) -> str:
    directions = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}
    if mode not in directions:
        raise ValueError(f"metric.mode must be min or max, got {mode!r}")
    return directions[mode]


def _sqlite(path: str) -> str:
    """``sqlite:///<absolute path>``. It makes no folder: resolving a config must not write anything (a
    checkpoint's config is resolved too); the sweeper makes the folder when it opens the study."""
    return f"sqlite:///{Path(path).expanduser().resolve()}"


for _name, _fn in (("gentwin_jobs", _jobs), ("gentwin_gpus_per_job", _gpus_per_job),
                   ("gentwin_direction", _direction), ("gentwin_sqlite", _sqlite)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
