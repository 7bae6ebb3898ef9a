"""The search of the ``gentwin_optuna`` sweeper: search space, ask-launch-tell loop, best trial.

Hydra's override expressions become Optuna distributions:

* ``choice(a, b, ...)`` and ``a,b,...``: categorical;
* ``range(start, stop[, step])``: integers (or floats) from ``start`` to the last value before ``stop``
  in steps of ``step``, as Hydra's own sweeper runs them; ``shuffle(range(...))``: categorical;
* ``interval(low, high)``: a float in [low, high]; ``int(interval(low, high))``: an integer;
  ``tag(log, interval(...))``: either, sampled on a log scale.

A plain value (``model=nice``) is a fixed override, passed to every trial.

Each batch of ``n_jobs`` trials is asked from the study, launched together and told back: the value
a job returns, or ``FAIL`` when the job raised or returned no number (``None``, NaN). The trials
keep their overrides, run folder and error as user attributes, and the process that asked them (``pid``,
``host``): a sweep killed before it could tell its trials (kill -9) leaves them RUNNING, and the next sweep
on the study marks them FAIL once that process is gone.

A stored study is keyed by its name and the budget its trials share (``BUDGET``: epochs, steps, time
and ``dataset.n``), so trials trained for different budgets never compete for the best one.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.core.utils import JobReturn
from omegaconf import OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    check_distribution_compatibility,
)
from optuna.trial import Trial, TrialState

from gentwin.atomic import alive

log = logging.getLogger(__name__)

Launch = Callable[[Sequence[Sequence[str]], int], Sequence[JobReturn]]
RESULTS = "optimization_results.yaml"
#: Config values that set a trial's budget; a study holds trials of one budget only (``study_key``).
BUDGET = ("trainer.max_epochs", "trainer.max_steps", "trainer.max_time", "dataset.n")


def to_distribution(override: Override) -> BaseDistribution | None:
    """The Optuna distribution of a sweep override; ``None`` for a plain value (a fixed override)."""
    if not override.is_sweep_override():
        return None
    value = override.value()
    if override.is_choice_sweep() or (override.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(override.sweep_iterator(transformer=Transformer.encode)))
    if override.is_range_sweep():
        values = list(override.sweep_iterator())
        if not values:
            raise ValueError(f"{override.input_line}: the range holds no value")
        step = abs(value.step)
        if all(isinstance(v, int) for v in (*values, step)):
            return IntDistribution(min(values), max(values), step=step)
        return FloatDistribution(min(values), max(values), step=step)
    if override.is_interval_sweep():
        log_scale = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log_scale)
        return FloatDistribution(value.start, value.end, log=log_scale)
    raise ValueError(f"{override.input_line}: the Optuna search takes choice, range or interval, not this sweep")


def parse_space(expressions: Sequence[str]) -> tuple[dict[str, BaseDistribution], dict[str, str]]:
    """``(search space, fixed overrides)`` of ``key=expression`` strings, a later one of a key winning."""
    space: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    for override in OverridesParser.create().parse_overrides(list(expressions)):
        key = override.get_key_element()
        space.pop(key, None)
        fixed.pop(key, None)
        distribution = to_distribution(override)
        if distribution is None:
            fixed[key] = override.input_line
        else:
            space[key] = distribution
    return space, fixed


def check_space(study: optuna.Study, space: dict[str, BaseDistribution]) -> None:
    """Raises ``ValueError`` when ``space`` gives a parameter of the stored study another kind of
    distribution or other choices, which Optuna refuses only once a trial has been asked."""
    stored = {k: d for t in study.get_trials(deepcopy=False) for k, d in t.distributions.items() if k in space}
    for key, old in stored.items():
        try:
            check_distribution_compatibility(old, space[key])
        except ValueError as e:
            raise ValueError(f"study {study.study_name!r} searched {key} over {old}, not {space[key]} ({e}); "
                             "search the new space under another hydra.sweeper.study_name") from None


def study_key(name: str, space: Mapping[str, BaseDistribution], fixed: Mapping[str, str],
              budget: Mapping[str, Any]) -> str:
    """``name`` and the budget every trial of the sweep shares, e.g. ``wgan_gp_moons [max_epochs=9
    max_steps=-1 max_time=null dataset.n=400]``: a key of ``budget`` (its value in the sweep's config)
    takes its value from a fixed override of the sweep, or is ``searched`` when it is in the space."""
    fixed = {k.lstrip("+~"): v for k, v in fixed.items()}
    parts = []
    for key, value in budget.items():
        if key in space:
            shown = "searched"
        elif key in fixed:
            shown = fixed[key].split("=", 1)[1]
        else:
            shown = override_string(key, value).split("=", 1)[1]
        parts.append(f"{key.removeprefix('trainer.')}={shown}")
    return f"{name} [{' '.join(parts)}]"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` of this host still runs (``False`` for this process: its sweep starts now)."""
    return pid != os.getpid() and alive(pid)


def fail_stale(study: optuna.Study) -> list[int]:
    """Marks FAIL the study's RUNNING trials whose sweep process is gone (killed before it could tell
    them); returns their numbers. Trials asked on another host, or by a process that still runs,
    stay RUNNING: nothing here can tell whether they are over."""
    host, stale = socket.gethostname(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") == host and isinstance(pid, int) and not _alive(pid):
            study.tell(trial.number, state=TrialState.FAIL)
            stale.append(trial.number)
    if stale:
        log.warning(f"Trials {stale} of study {study.study_name!r} were left RUNNING by a sweep that ended "
                    f"without telling them (killed?); marked FAIL")
    return stale


def _make_folder(storage: str | None) -> None:
    """Makes the folder of a ``sqlite:///`` storage's file (sqlite makes the file, not its folder)."""
    if storage and storage.startswith("sqlite:///"):
        from sqlalchemy.engine import make_url

        database = make_url(storage).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def override_string(key: str, value: Any) -> str:
    """``key=value`` as Hydra parses it back (``null``, ``true``; strings come encoded from the choices)."""
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return f"{key}={text}"


def objective_value(ret: JobReturn) -> float:
    """The value a job returned, as a float. Raises the job's own error, or ``ValueError`` when it
    returned no number (``None``, NaN: a diverged run)."""
    value = ret.return_value  # raises what the job raised
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if math.isnan(number):
        raise ValueError(f"the job returned {value!r}, not a number")
    return number


def batch_size(n_jobs: int) -> int:
    """Trials per batch: ``n_jobs``, or below 1 as joblib counts (-1 = the CPU count, -2 = one less)."""
    return n_jobs if n_jobs >= 1 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)


def _shown_storage(storage: str | None) -> str | None:
    """The storage URL without its password (it is logged and written to the sweep folder)."""
    if storage is None:
        return None
    from sqlalchemy.engine import make_url

    return make_url(storage).render_as_string(hide_password=True)


@dataclass
class Search:
    """An Optuna search of ``n_trials`` trials in batches of ``n_jobs``, on a (possibly stored) study."""

    sampler: optuna.samplers.BaseSampler | None
    direction: str
    study_name: str | None
    storage: str | None
    n_trials: int
    n_jobs: int = 1
    max_failure_rate: float = 1.0
    #: The sweep config's values of ``BUDGET``, which key the study with its name (``None``: the name alone).
    budget: Mapping[str, Any] | None = None

    def run(self, expressions: Sequence[str], launch: Launch, sweep_dir: str | Path) -> list[JobReturn]:
        """Loads or creates the study, runs the trials, logs the best one and writes it to
        ``<sweep_dir>/optimization_results.yaml``. Returns the jobs' ``JobReturn``s."""
        space, fixed = parse_space(expressions)
        name = self.study_name
        if name is not None and self.budget is not None:
            name = study_key(name, space, fixed, self.budget)
        _make_folder(self.storage)
        study = optuna.create_study(study_name=name, storage=self.storage, sampler=self.sampler,
                                    direction=self.direction, load_if_exists=True)
        fail_stale(study)
        log.info(f"Study {study.study_name!r} ({self.direction}, {type(study.sampler).__name__}) in "
                 f"{_shown_storage(self.storage) or 'memory'}: {len(study.trials)} trials before this sweep")
        log.info("Search space: " + ", ".join(f"{k}: {d}" for k, d in space.items()))
        check_space(study, space)
        returns = self.optimize(study, space, list(fixed.values()), launch)
        self.report(study, Path(sweep_dir))
        return returns

    def optimize(self, study: optuna.Study, space: dict[str, BaseDistribution], fixed: list[str],
                 launch: Launch) -> list[JobReturn]:
        """Asks, launches and tells ``n_trials`` trials, ``n_jobs`` at a time."""
        returns: list[JobReturn] = []
        while len(returns) < self.n_trials:
            trials = [study.ask(space) for _ in range(min(batch_size(self.n_jobs), self.n_trials - len(returns)))]
            overrides = [[*(override_string(k, v) for k, v in t.params.items()), *fixed] for t in trials]
            for trial, job in zip(trials, overrides, strict=True):
                trial.set_user_attr("overrides", job)
                trial.set_user_attr("pid", os.getpid())  # fail_stale: whose trial it is
                trial.set_user_attr("host", socket.gethostname())
            try:
                batch = launch(overrides, len(returns))
            except BaseException:  # interrupted or unlaunchable: no trial stays RUNNING in the study
                for trial in trials:
                    study.tell(trial, state=TrialState.FAIL)
                raise
            returns.extend(batch)
            errors = [e for e in (self._tell(study, t, r) for t, r in zip(trials, batch, strict=True)) if e]
            if errors and len(errors) / len(batch) > self.max_failure_rate:
                raise RuntimeError(f"{len(errors)} of {len(batch)} trials of the batch failed, more than "
                                   f"max_failure_rate={self.max_failure_rate}; first error: {errors[0]}") from errors[0]
        return returns

    @staticmethod
    def _tell(study: optuna.Study, trial: Trial, ret: JobReturn) -> Exception | None:
        """Tells the study the job's value, or that it failed (then returns the error)."""
        folder = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg else None
        if folder:
            trial.set_user_attr("folder", str(folder))
        try:
            value = objective_value(ret)
        except Exception as e:  # the job's own error, or no number returned: the search goes on
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            study.tell(trial, state=TrialState.FAIL)
            log.warning(f"Trial {trial.number} failed: {type(e).__name__}: {e}" + (f" ({folder})" if folder else ""))
            return e
        study.tell(trial, value)
        log.info(f"Trial {trial.number}: {value:.6g}")
        return None

    def report(self, study: optuna.Study, sweep_dir: Path) -> dict[str, Any]:
        """Logs the study's best trial and writes it to ``sweep_dir/optimization_results.yaml``.

        Raises:
            RuntimeError: no trial of the study has completed.
        """
        states = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
        counts = ", ".join(f"{n} {state}" for state, n in states.items())
        if not states["complete"]:
            raise RuntimeError(f"no trial of study {study.study_name!r} completed ({counts}); see the errors above")
        best = study.best_trial
        result = {
            "name": "optuna",
            "study_name": study.study_name,
            "storage": _shown_storage(self.storage),
            "direction": self.direction,
            "trials": dict(states),
            "best_trial": best.number,
            "best_value": best.value,
            "best_params": dict(best.params),
            "best_overrides": list(best.user_attrs.get("overrides")
                                   or [override_string(k, v) for k, v in best.params.items()]),
            "best_folder": best.user_attrs.get("folder"),
        }
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / RESULTS
        path.write_text(yaml.safe_dump(result, sort_keys=False))
        log.info(f"Best of study {study.study_name!r} ({counts}): trial {best.number}, value {best.value:.6g}")
        log.info("  overrides: " + " ".join(result["best_overrides"]))
        if result["best_folder"]:
            log.info(f"  folder:    {result['best_folder']}")
        log.info(f"  written:   {path}")
        return result
