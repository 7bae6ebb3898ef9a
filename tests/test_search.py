"""The Optuna search sweeper (src/hydra_plugins/gentwin_optuna_sweeper) on cheap pure-Python objectives.

A fake launcher stands in for Hydra's: it evaluates each job's overrides at once and returns the
``JobReturn`` a launcher would. The end-to-end search (``run -m hydra/sweeper=search``) is in
test_launchers.py.
"""

from __future__ import annotations

import math

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from hydra.core.utils import JobReturn, JobStatus  # noqa: E402
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from hydra_plugins.gentwin_optuna_sweeper._search import RESULTS, Search, parse_space  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = ["x=interval(-5, 5)", "n=range(0, 6)", "fixed=7"]


def quadratic(p: dict[str, str]) -> float:
    """Minimum 0 at x=1.5, n=3; every job must carry the fixed override."""
    assert p["fixed"] == "7"
    return (float(p["x"]) - 1.5) ** 2 + (int(p["n"]) - 3) ** 2


class FakeLauncher:
    """Runs ``objective`` on each job's ``key=value`` overrides; records the batches it was given."""

    def __init__(self, objective):
        self.objective = objective
        self.batches: list[tuple[int, int]] = []  # (initial_job_idx, jobs)

    def __call__(self, jobs, initial_job_idx):
        self.batches.append((initial_job_idx, len(jobs)))
        returns = []
        for job in jobs:
            params = dict(o.split("=", 1) for o in job)
            try:
                ret = JobReturn(overrides=job, status=JobStatus.COMPLETED, _return_value=self.objective(params))
            except Exception as e:  # as Hydra's run_job records a failed job
                ret = JobReturn(overrides=job, status=JobStatus.FAILED, _return_value=e)
            returns.append(ret)
        return returns


def search(tmp_path, n_trials=20, seed=0, **kw) -> Search:
    kw.setdefault("storage", f"sqlite:///{tmp_path / 'study.db'}")
    return Search(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5), direction="minimize",
                  study_name="q", n_trials=n_trials, **kw)


def load(tmp_path):
    return optuna.load_study(study_name="q", storage=f"sqlite:///{tmp_path / 'study.db'}")


def test_search_spaces_become_optuna_distributions():
    space, fixed = parse_space(["a=choice(4, 8)", "b=1,2", "c=range(1, 8, 2)", "d=range(5, 0, -2)",
                                "e=tag(log, interval(1e-5, 1e-3))", "f=int(interval(1, 9))", "g=interval(0, 1)",
                                "h=shuffle(range(3))", "model=nice", "a=choice(1, 2, 3)", "g=0.5"])
    assert space["a"] == CategoricalDistribution([1, 2, 3])  # a later expression of a key wins
    assert space["b"] == CategoricalDistribution([1, 2])
    assert space["c"] == IntDistribution(1, 7, step=2)  # as Hydra's range: 1, 3, 5, 7 (8 excluded)
    assert space["d"] == IntDistribution(1, 5, step=2)
    assert space["e"] == FloatDistribution(1e-5, 1e-3, log=True)
    assert space["f"] == IntDistribution(1, 9)
    assert set(space["h"].choices) == {0, 1, 2}
    assert "g" not in space and fixed == {"model": "model=nice", "g": "g=0.5"}


def test_search_beats_its_first_trial_on_a_quadratic(tmp_path):
    launch = FakeLauncher(quadratic)
    returns = search(tmp_path).run(SPACE, launch, tmp_path / "sweep")
    study = load(tmp_path)
    values = [t.value for t in study.trials]
    assert len(returns) == 20 and all(t.state == TrialState.COMPLETE for t in study.trials)
    assert values == pytest.approx([r.return_value for r in returns])
    assert study.best_value < values[0] and study.best_value < 0.5  # the known minimum is 0
    assert study.best_params["n"] == 3
    result = yaml.safe_load((tmp_path / "sweep" / RESULTS).read_text())
    assert result["best_value"] == study.best_value and result["best_trial"] == study.best_trial.number
    assert result["best_params"] == study.best_params and result["trials"] == {"complete": 20}
    assert "fixed=7" in result["best_overrides"] and "n=3" in result["best_overrides"]
    assert launch.batches == [(i, 1) for i in range(20)]


def test_n_jobs_trials_are_asked_and_launched_together(tmp_path):
    launch = FakeLauncher(quadratic)
    search(tmp_path, n_trials=5, n_jobs=2, storage=None).run(SPACE, launch, tmp_path)
    assert launch.batches == [(0, 2), (2, 2), (4, 1)]


def test_a_resumed_study_adds_trials(tmp_path):
    for sweep in ("first", "second"):
        search(tmp_path, n_trials=3, seed=None).run(SPACE, FakeLauncher(quadratic), tmp_path / sweep)
    study = load(tmp_path)
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    second = yaml.safe_load((tmp_path / "second" / RESULTS).read_text())
    assert second["trials"] == {"complete": 6} and second["best_value"] == study.best_value


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path):
    outcomes = iter([RuntimeError("diverged"), None, math.nan])  # then the quadratic

    def fragile(p):
        out = next(outcomes, quadratic(p))
        if isinstance(out, Exception):
            raise out
        return out

    search(tmp_path, n_trials=8).run(SPACE, FakeLauncher(fragile), tmp_path)
    trials = load(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 3 + [TrialState.COMPLETE] * 5
    assert [t.user_attrs["error"] for t in trials[:3]] == [
        "RuntimeError: diverged", "ValueError: the job returned None, not a number",
        "ValueError: the job returned nan, not a number"]
    result = yaml.safe_load((tmp_path / RESULTS).read_text())
    assert result["trials"] == {"fail": 3, "complete": 5} and result["best_trial"] >= 3


def test_max_failure_rate_stops_the_search(tmp_path):
    def broken(p):
        raise ValueError("bad config")

    with pytest.raises(RuntimeError, match="2 of 2 trials of the batch failed") as e:
        search(tmp_path, n_trials=6, n_jobs=2, max_failure_rate=0.5).run(SPACE, FakeLauncher(broken), tmp_path)
    assert isinstance(e.value.__cause__, ValueError)
    assert [t.state for t in load(tmp_path).trials] == [TrialState.FAIL] * 2
    with pytest.raises(RuntimeError, match="no trial of study 'q' completed"):  # 1.0: goes on to the end
        search(tmp_path, n_trials=2).run(SPACE, FakeLauncher(broken), tmp_path)
    assert not (tmp_path / RESULTS).exists()


def test_an_interrupted_batch_leaves_no_running_trial(tmp_path):
    def interrupt(jobs, initial_job_idx):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        search(tmp_path, n_trials=4, n_jobs=2).run(SPACE, interrupt, tmp_path)
    trials = load(tmp_path).trials
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    assert "fixed=7" in trials[0].user_attrs["overrides"]


def test_a_changed_space_of_a_stored_study_is_refused_before_any_trial(tmp_path):
    search(tmp_path, n_trials=1).run(SPACE, FakeLauncher(quadratic), tmp_path)
    with pytest.raises(ValueError, match="searched n over IntDistribution"):
        search(tmp_path, n_trials=1).run([*SPACE, "n=choice(3, 4)"], FakeLauncher(quadratic), tmp_path)
    assert len(load(tmp_path).trials) == 1


def test_the_search_preset_composes_on_the_plugin(tmp_path, monkeypatch):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from conftest import CONFIGS
    from gentwin.training import resolvers  # noqa: F401  (the presets' resolvers)

    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose(config_name="run", return_hydra_config=True, overrides=[
            "hydra/sweeper=search", "hydra/launcher=parallel", "hydra.launcher.n_jobs=3", "metric.mode=max"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.gentwin_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed is None
    assert sweeper.direction == "maximize" and sweeper.n_jobs == 3 and sweeper.max_failure_rate == 1.0
    assert OmegaConf.select(cfg, "hydra.sweeper.study_name") == "realnvp_moons"  # <model>_<dataset> of the default run


def test_a_sweep_marks_failed_the_running_trials_of_a_killed_sweep(tmp_path):
    import contextlib
    import os
    import signal
    import socket
    import time

    launched = tmp_path / "launched"

    def hang(jobs, initial_job_idx):
        launched.touch()
        time.sleep(120)

    pid = os.fork()
    if pid == 0:  # a sweep killed with kill -9 while its trials run: it cannot tell them
        try:
            search(tmp_path, n_trials=2, n_jobs=2).run(SPACE, hang, tmp_path)
        finally:
            os._exit(1)
    try:
        while not launched.exists():
            assert os.waitpid(pid, os.WNOHANG) == (0, 0), "the forked sweep ended before it launched"
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):  # (already reaped if it ended)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    study = load(tmp_path)
    assert [t.state for t in study.trials] == [TrialState.RUNNING] * 2
    assert [t.user_attrs["pid"] for t in study.trials] == [pid] * 2
    live, elsewhere = study.ask(), study.ask()  # a live sweep's trial, and one of another machine: left alone
    live.set_user_attr("pid", os.getppid())
    live.set_user_attr("host", socket.gethostname())
    elsewhere.set_user_attr("pid", pid)
    elsewhere.set_user_attr("host", socket.gethostname() + ".elsewhere")

    search(tmp_path, n_trials=1).run(SPACE, FakeLauncher(quadratic), tmp_path)
    assert [t.state for t in load(tmp_path).trials] == [TrialState.FAIL] * 2 + [TrialState.RUNNING] * 2 + [
        TrialState.COMPLETE]


def test_a_study_is_keyed_by_the_budget_of_its_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna' / 'studies.db'}"  # its folder is made when the study opens
    budget = {"trainer.max_epochs": 5, "trainer.max_steps": -1, "trainer.max_time": None, "dataset.n": 400}
    for extra in ([], ["trainer.max_epochs=9"], ["+trainer.max_time=00:00:01:00"], [],
                  ["trainer.max_epochs=choice(5, 9)"]):
        search(tmp_path, n_trials=2, storage=storage, budget=budget).run([*SPACE, *extra], FakeLauncher(quadratic),
                                                                         tmp_path)
    counts = {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}
    assert counts == {"q [max_epochs=5 max_steps=-1 max_time=null dataset.n=400]": 4,
                      "q [max_epochs=9 max_steps=-1 max_time=null dataset.n=400]": 2,
                      "q [max_epochs=5 max_steps=-1 max_time=00:00:01:00 dataset.n=400]": 2,
                      "q [max_epochs=searched max_steps=-1 max_time=null dataset.n=400]": 2}
    result = yaml.safe_load((tmp_path / RESULTS).read_text())
    assert result["study_name"] == "q [max_epochs=searched max_steps=-1 max_time=null dataset.n=400]"
