"""Hydra sweeper ``gentwin_optuna``: an Optuna search on Optuna's ask-and-tell interface (Optuna 4 and later).

Registered in Hydra's ConfigStore as ``hydra/sweeper/gentwin_optuna`` with samplers in
``hydra/sweeper/sampler`` (``tpe``, the default, ``random``, ``cmaes``, ``gp``); gentwin's preset
``configs/hydra/sweeper/search.yaml`` builds on it. The interface follows the former
hydra-optuna-sweeper plugin: a search space in ``params`` or on the command line (``choice``,
``range``, ``interval``, ``tag(log, interval(...))``), ``direction``, ``study_name``, ``storage``,
``n_trials``, ``n_jobs`` (trials asked and launched together) and ``max_failure_rate``.

This module imports no Optuna: Hydra imports every plugin module at each start, searching or not.
The search itself is in ``_search.py``. No ``from __future__ import annotations`` here: Hydra's plugin
scan runs this module before it is in ``sys.modules``, where dataclasses look string annotations up.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig


@dataclass
class TPESamplerConf:
    """Optuna's TPE sampler; further arguments with ``+hydra.sweeper.sampler.<name>=...``."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10


@dataclass
class RandomSamplerConf:
    """Uniform random sampling: a baseline, or a search of a few trials."""

    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class CmaEsSamplerConf:
    """CMA-ES (needs the ``cmaes`` package); continuous parameters only, others are sampled at random."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None


@dataclass
class GPSamplerConf:
    """Gaussian-process Bayesian optimization (torch, scipy): for small budgets of expensive trials."""

    _target_: str = "optuna.samplers.GPSampler"
    seed: int | None = None
    n_startup_trials: int = 10


@dataclass
class OptunaSweeperConf:
    """The sweeper's options (``hydra.sweeper.*``); the defaults list picks the TPE sampler."""

    _target_: str = "hydra_plugins.gentwin_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}])
    # An Optuna sampler (instantiated by Hydra): hydra/sweeper/sampler=tpe|random|cmaes|gp.
    sampler: Any = MISSING
    # "minimize" or "maximize" the value each job returns.
    direction: str = "minimize"
    # The study: its name and where it is stored (an SQLAlchemy URL such as sqlite:///path.db; null
    # keeps it in memory). A stored study of that name and the same budget (trainer.max_epochs,
    # max_steps, max_time, dataset.n; stored as "<name> [max_epochs=...]") is loaded and its new
    # trials add to the old; another budget starts a study of its own.
    study_name: str | None = None
    storage: str | None = None
    # Trials this sweep runs.
    n_trials: int = 20
    # Trials asked together and launched as one batch (run in parallel by a parallel launcher);
    # below 1 counts as joblib does: -1 = the CPU count, -2 = one less.
    n_jobs: int = 1
    # The sweep stops when more than this share of one batch fails (1.0: never). Failed trials are
    # recorded as failed either way.
    max_failure_rate: float = 1.0
    # The search space, key: expression (choice(...), interval(...), ...); a plain value is a fixed
    # override of every trial. Command-line arguments add to it.
    params: dict[str, Any] | None = None


_store = ConfigStore.instance()
_store.store(group="hydra/sweeper", name="gentwin_optuna", node=OptunaSweeperConf, provider="gentwin")
for _name, _node in (("tpe", TPESamplerConf), ("random", RandomSamplerConf), ("cmaes", CmaEsSamplerConf),
                     ("gp", GPSamplerConf)):
    _store.store(group="hydra/sweeper/sampler", name=_name, node=_node, provider="gentwin")


class OptunaSweeper(Sweeper):
    """Asks Optuna for ``n_jobs`` trials at a time, launches them as one batch and tells it their values."""

    def __init__(self, sampler: Any, direction: str, study_name: str | None, storage: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, params: DictConfig | None) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_rate must be in [0, 1], got {max_failure_rate}")
        self.sampler = sampler
        self.direction = direction
        self.study_name = study_name
        self.storage = storage
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.params = params
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> list:
        """Runs the search over ``params`` and ``arguments``; returns the jobs' ``JobReturn``s."""
        from omegaconf import OmegaConf

        from ._search import BUDGET, Search

        search = Search(sampler=self.sampler, direction=self.direction, study_name=self.study_name,
                        storage=self.storage, n_trials=self.n_trials, n_jobs=self.n_jobs,
                        max_failure_rate=self.max_failure_rate,
                        budget={key: OmegaConf.select(self.config, key) for key in BUDGET})
        expressions = [f"{key}={value}" for key, value in (self.params or {}).items()]
        return search.run([*expressions, *arguments], self.launcher.launch, self.config.hydra.sweep.dir)
