"""Validation of a composed config, before any folder is made or heavy module imported.

Rules apply to a key wherever it sits in the tree (``model.latent_dim``, ``model.loss.gp_weight``),
so a new model inherits them by using the shared key names.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from gentwin.errors import ConfigError

#: The package's config folder (``GENTWIN_CONFIGS`` points elsewhere).
CONFIGS = Path(os.environ.get("GENTWIN_CONFIGS", Path(__file__).resolve().parents[3] / "configs"))



def _flat(node: dict, prefix: str = "") -> list[tuple[str, object]]:
    """``(dotted key, value)`` of a config's leaves; a node with a ``_target_`` is one leaf, its class."""
    out = []
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and "_target_" not in v:
            out += _flat(v, key + ".")
        elif k != "defaults":
            out.append((key, v))
    return out


def _shown(value) -> str:
    return str(value["_target_"]).rsplit(".", 1)[-1] if isinstance(value, dict) else str(value)


def _own_file(path: Path, group: str) -> list[tuple[str, object]]:
    """What config file ``path`` of ``group`` sets outside its own group (``@package _global_`` files);
    a specialisation's included files (``defaults: [tpc_wgan_gp]``) first."""
    if not path.is_file() or not path.read_text().startswith("# @package _global_"):
        return []
    node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    included = [d for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]
    items = [kv for d in included if group == "specialise" for kv in _own_file(path.with_name(f"{d}.yaml"), group)]
    return items + [(k, v) for k, v in _flat(node) if group == "specialise" or k.split(".")[0] != group]


def _includes(path: Path) -> list[str]:
    """The specialisation files ``path`` includes, as ``tpc_wgan_gp.yaml`` (none: ``[]``)."""
    node = OmegaConf.load(path) if path.is_file() else {}
    return [f"{d}.yaml" for d in node.get("defaults", []) if isinstance(d, str) and d != "_self_"]


def specialisations(choices: dict, cfg: DictConfig | None = None, root: Path | None = None) -> list[str]:
    """The lines a run prints at its start: what adapts its model to its dataset, and where it is set.

    That is configs/specialise/<dataset>_<model>.yaml (when it exists, with the files it includes)
    and whatever the model's own config sets outside ``model`` (the DCGAN's data transform). Given
    the composed ``cfg``, a key the experiment or command line changed afterwards shows its value in
    use and the file's one.
    """
    root = CONFIGS if root is None else root
    sources = [(root / "model" / f"{choices.get('model')}.yaml", "model"),
               (root / "specialise" / f"{choices.get('specialise')}.yaml", "specialise")]
    lines = []
    for path, group in sources:
        items = []
        for key, value in _own_file(path, group):
            text = f"{key}={_shown(value)}"
            if cfg is not None:
                used = OmegaConf.select(cfg, f"{key}._target_" if isinstance(value, dict) else key)
                used = OmegaConf.to_container(used) if isinstance(used, DictConfig | ListConfig) else used
                used = _shown({"_target_": used} if isinstance(value, dict) else used)
                if used != _shown(value):
                    text = f"{key}={used} (overridden; the file's {_shown(value)})"
            items.append(text)
        if items:
            where = path.relative_to(root.parent) if root.parent in path.parents else path
            via = f", which includes {', '.join(_includes(path))}" if group == "specialise" and _includes(path) else ""
            lines.append(f"specialised for {choices.get('dataset')}: {', '.join(items)} ({where}{via})")
    return lines


def specialisation_help(root: Path | None = None) -> list[str]:
    """``run --help``'s lines: per specialisation, the dataset and models it applies to and what it sets."""
    root = CONFIGS if root is None else root
    datasets = sorted((p.stem for p in (root / "dataset").glob("*.yaml")), key=len, reverse=True)
    models = {p.stem for p in (root / "model").glob("*.yaml")}
    by_file: dict[Path, list[str]] = {}  # the file that sets the values -> "<dataset> + <model>" using it
    for path in sorted((root / "specialise").glob("*.yaml")):
        owner = path
        while _includes(owner) and not _flat(OmegaConf.to_container(OmegaConf.load(owner))):
            owner = owner.with_name(_includes(owner)[0])  # a file that only includes another: that one's
        dataset = next((d for d in datasets if path.stem.startswith(d + "_")), None)
        model = path.stem[len(dataset) + 1:] if dataset else None
        pair = (dataset, model) if model in models else None
        by_file.setdefault(owner, []).append(pair or f"(no <dataset>_<model> pair: specialise={path.stem})")
    lines = []
    for owner, pairs in by_file.items():
        sets = ", ".join(f"{k}={_shown(v)}" for k, v in _own_file(owner, "specialise"))
        per_dataset: dict[str, list[str]] = {}
        for pair in pairs:
            if isinstance(pair, tuple):
                per_dataset.setdefault(pair[0], []).append(pair[1])
        who = [f"{d} + {', '.join(sorted(ms))}" for d, ms in per_dataset.items()]
        lines.append(f"  {'; '.join(who + [p for p in pairs if isinstance(p, str)])}: {sets} "
                     f"(configs/specialise/{owner.name})")
    for model in sorted(models):
        sets = ", ".join(f"{k}={_shown(v)}" for k, v in _own_file(root / "model" / f"{model}.yaml", "model"))
        if sets:
            lines.append(f"  any dataset + {model}: {sets} (configs/model/{model}.yaml)")
    return lines


def _int(lo):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= lo), f"an integer >= {lo}"


def _pos():
    return (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0), \
        "a number > 0"


def _nonneg():
    return (lambda v: isinstance(v, int | float) and math.isfinite(v) and v >= 0), "a number >= 0"


def _open01():
    return (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1), "a number in (0, 1)"


def _seed(v) -> bool:  # Lightning's seed_everything and numpy's generators take 0 <= seed < 2**32
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32


def _duration(v) -> bool:
    """Lightning's ``max_time`` string, "DD:HH:MM:SS" as its Timer parses it, longer than zero."""
    import re

    m = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", v.strip()) if isinstance(v, str) else None
    return m is not None and any(int(g) for g in m.groups())


def _devices(v) -> bool:
    if isinstance(v, list):
        return len(v) > 0 and len(set(v)) == len(v) and all(_int(0)[0](d) for d in v)
    return v == "auto" or (_int(-1)[0](v) and v != 0)


def _batches(v) -> bool:  # Lightning: an int counts batches, a float is a fraction of them
    return _int(1)[0](v) or (isinstance(v, float) and 0 < v <= 1)


def _betas(v) -> bool:
    return len(v) == 2 and all(isinstance(b, int | float) and not isinstance(b, bool) and 0 <= b < 1 for b in v)


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
    "smooth": _int(1),
    "check_val_every_n_epoch": _int(1),
    "log_every_n_steps": _int(1),
    "ema": _open01(),
    "finite_check": ((lambda v: v in ("step", "deferred")), "'step', 'deferred' or null"),
    # fp16 needs a gradient scaler wrapped around optimizer.step, which the families' manual steps bypass.
    "precision": ((lambda v: str(v) in ("32", "64", "32-true", "64-true", "bf16", "bf16-mixed", "bf16-true")),
                  "32-true, 64-true, bf16-mixed, bf16-true or null (fp16 is not supported)"),
    "betas": (_betas, "a list of two numbers in [0, 1)"),
    "val_fraction": _open01(),
    "hidden": ((lambda v: all(isinstance(h, int) and h >= 1 for h in v)), "a list of integers >= 1"),
    "hidden_features": ((lambda v: all(isinstance(h, int) and h >= 1 for h in v)), "a list of integers >= 1"),
    "seed": (_seed, "an integer in [0, 4294967295]"),
    "max_steps": ((lambda v: _int(-1)[0](v) and v != 0), "an integer >= 1, or -1 (no limit)"),
    "max_time": (_duration, 'a duration "DD:HH:MM:SS" longer than 0 (e.g. 00:02:30:00), or null'),
    "devices": (_devices, "an integer >= 1, -1 (all), auto, or a list of device indices such as [0,1]"),
    "limit_train_batches": (_batches, "an integer >= 1 (batches), a fraction in (0, 1], or null (all)"),
    "mode": ((lambda v: v in ("min", "max")), "min or max"),
    "final_checkpoint": ((lambda v: v in ("best", "last")), "best or last"),
}
NULLABLE = {"critic_lr", "threads", "n", "ema", "check_val_every_n_epoch", "finite_check", "precision", "max_time",
            "limit_train_batches"}
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


def check_logger(cfg: DictConfig) -> None:
    """``logger.name``, ``version`` and ``sub_dir`` name folders inside the run folder: one name each, no
    path separator and no ``..`` (``logger.name=../../x`` would write TensorBoard files outside it)."""
    logger = cfg.get("logger") or {}
    for key in ("name", "version", "sub_dir"):
        value = logger.get(key)
        if value is not None and ("/" in str(value) or "\\" in str(value) or str(value) == ".."):
            raise ConfigError(f"invalid value logger.{key}={value}: must be a folder name inside the run folder "
                              f"(no /, \\ or ..)")


def validate(cfg: DictConfig) -> None:
    """Raises ``ConfigError`` on the first invalid value, naming the key and what is allowed."""
    check_logger(cfg)
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
        from gentwin.models import batches_per_step  # the model's family says (a GAN: its critic steps)

        per_step = batches_per_step(cfg.get("model"))
        n_train = data.n - max(1, round(data.n * data.get("val_fraction", 0.25)))
        need = data.batch_size * per_step
        if need > n_train:
            raise ConfigError(
                f"invalid value dataset.batch_size={data.batch_size}: with {per_step} batch(es) per step it "
                f"needs {need} training samples, the dataset has {n_train} (dataset.n={data.n})"
            )
    _check_monitor(cfg)
    _check_accelerator(cfg)
    _check_checkpoint(cfg)


#: What ``gentwin.training.evaluate`` logs beside the metric entries' ``<entry>`` and ``<entry>/<key>`` values.
EVALUATOR_KEYS = ("nll", "finite_fraction", "samples_per_second")


def _check_monitor(cfg: DictConfig) -> None:
    """``metric.monitor`` must be a value the metric group's entries log, or Lightning stops the run at
    its first validation. The keys under an entry depend on the dataset; its name is known now."""
    metric = cfg.get("metric")
    if metric is None or metric.get("monitor") is None or metric.get("entries") is None:
        return
    entries = [str(k) for k in metric.entries]
    if str(metric.monitor).split("/")[0] in [*entries, *EVALUATOR_KEYS]:
        return
    group = OmegaConf.select(cfg, "hydra.runtime.choices.metric")
    if group is None:
        from hydra.core.hydra_config import HydraConfig

        group = HydraConfig.get().runtime.choices.get("metric") if HydraConfig.initialized() else None
    raise ConfigError(
        f"invalid value metric.monitor={metric.monitor}: must be a value logged by metric={group}: "
        f"{', '.join(f'{e}/<key>' for e in entries)} (the keys depend on the dataset; TensorBoard's val/ tab "
        f"lists them), or {', '.join(EVALUATOR_KEYS)}"
    )


def _check_accelerator(cfg: DictConfig) -> None:
    """A GPU accelerator needs a device this machine has (else Lightning raises while building the Trainer)."""
    accelerator = OmegaConf.select(cfg, "trainer.accelerator")
    if accelerator not in ("gpu", "cuda"):
        return
    import torch

    if not torch.cuda.is_available() and not (accelerator == "gpu" and torch.backends.mps.is_available()):
        raise ConfigError(f"invalid value trainer.accelerator={accelerator}: no CUDA device is available on this "
                          f"machine (torch.cuda.is_available() is False); use trainer=cpu")


def _check_checkpoint(cfg: DictConfig) -> None:
    """``ckpt_path`` must be a checkpoint ``run`` wrote, read without running code (``weights_only``)."""
    path = cfg.get("ckpt_path")
    if path is None:
        return
    from gentwin.errors import CheckpointError
    from gentwin.training.checkpoint import read_checkpoint

    try:
        ckpt = read_checkpoint(path, mmap=True)  # mmap: the tensors stay on disk
    except CheckpointError as e:
        why = str(e).removeprefix(f"{Path(path)}: ")
        raise ConfigError(f"invalid value ckpt_path={path}: {why}; must be a run's checkpoints/last.ckpt") from None
    if "global_step" not in ckpt:
        raise ConfigError(f"invalid value ckpt_path={path}: a gentwin checkpoint without its training state "
                          f"(global_step); must be a run's checkpoints/last.ckpt")


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
