"""Launchers and sweeper: parallel jobs, a GPU each, submitit, a resumable Optuna study."""

from __future__ import annotations

import multiprocessing as mp
import re
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from conftest import TINY, cli, run_dirs
from gentwin.training import launch, resolvers  # noqa: F401  (resolvers: the presets' resolvers)

JOBLIB = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}
BASIC = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
SUBMITIT = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
SLURM = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"}


# -- pure functions ---------------------------------------------------------------------------------
def test_jobs_times_threads_never_exceed_the_cores():
    for cores in (1, 2, 3, 8, 64):
        for threads in (None, 1, 2, 3):
            jobs = launch.default_jobs("cpu", threads, cores, gpus=0)
            per_job = launch.job_threads(None, jobs, 1, cores)
            assert jobs >= 1 and per_job >= 1
            assert jobs * per_job <= cores or cores < (threads or 1)
            if threads and threads <= cores:
                assert jobs == cores // threads
    assert launch.default_jobs("gpu", None, 64, gpus=4) == 4
    assert launch.jobs_at_once(BASIC, 8) == 1 and launch.jobs_at_once(None, 8) == 1
    assert launch.jobs_at_once(JOBLIB, 8) == 2
    assert launch.jobs_at_once({**JOBLIB, "n_jobs": -1}, 8) == 8  # joblib: -1 = all cores
    assert launch.jobs_at_once({**JOBLIB, "n_jobs": -2}, 8) == 7
    assert launch.job_threads(None, 2, 2, 8) == 2  # 2 jobs x 2 ddp ranks on 8 cores
    assert launch.job_threads(3, 2, 2, 8) == 3  # given explicitly: kept
    assert launch.cpu_ranks({"accelerator": "cpu", "devices": 2}) == 2
    assert launch.cpu_ranks({"accelerator": "gpu", "devices": 2}) == 1
    kinds = [launch.launcher_kind(x) for x in (BASIC, JOBLIB, SUBMITIT, SLURM, None)]
    assert kinds == ["basic", "joblib", "submitit_local", "slurm", "basic"]


def test_pick_device_takes_a_free_one():
    assert launch.pick_device(["0", "1", "2"], set()) == 0
    assert launch.pick_device(["0", "1", "2"], {"0", "2"}) == 1
    assert launch.pick_device(["GPU-a", "GPU-b"], {"GPU-a", "GPU-b"}) is None
    assert launch.pick_device([], set()) is None


def test_leases_give_each_job_its_own_device_and_wait_when_all_are_taken(tmp_path):
    visible = ["3", "5"]
    with launch.lease_device(visible, tmp_path) as a, launch.lease_device(visible, tmp_path) as b:
        assert {a, b} == {0, 1}
        with pytest.raises(TimeoutError), launch.lease_device(visible, tmp_path, poll=0.01, timeout=0.05):
            pass
    with launch.lease_device(visible, tmp_path) as again:  # released
        assert again == 0


def _hold(visible, locks, queue, go):
    with launch.lease_device(visible, locks) as index:
        queue.put(index)
        go.wait(10)


def test_leases_are_exclusive_across_processes(tmp_path):
    ctx = mp.get_context("fork")
    queue, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_hold, args=(["0", "1"], tmp_path, queue, go)) for _ in range(2)]
    for p in procs:
        p.start()
    got = sorted(queue.get(timeout=20) for _ in procs)
    go.set()
    for p in procs:
        p.join(10)
    assert got == [0, 1]


def test_a_gpu_job_of_a_parallel_sweep_trains_on_its_leased_device(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    monkeypatch.setenv("GENTWIN_DEVICE_LOCKS", str(tmp_path))

    def job():
        return OmegaConf.create({"threads": None, "trainer": {"accelerator": "gpu", "devices": 1}})

    hc = SimpleNamespace(launcher=OmegaConf.create(JOBLIB))
    first, second = job(), job()
    with launch.job_resources(first, hc, multirun=True), launch.job_resources(second, hc, multirun=True):
        assert (first.trainer.devices, second.trainer.devices) == ([0], [1])
        assert first.threads == max(1, launch.cores_owned() // 2)
    cpu = OmegaConf.create({"threads": None, "trainer": {"accelerator": "cpu", "devices": 1}})
    with launch.job_resources(cpu, SimpleNamespace(launcher=OmegaConf.create(BASIC)), multirun=True):
        assert cpu.threads is None and cpu.trainer.devices == 1  # one job at a time: all the cores


def test_resolvers_of_the_presets(tmp_path):
    cfg = OmegaConf.create({"mode": "max", "db": f"${{gentwin_sqlite:{tmp_path}/a/b/s.db}}",
                            "d": "${gentwin_direction:${mode}}", "g": "${gentwin_gpus_per_job:gpu,2}",
                            "c": "${gentwin_gpus_per_job:cpu,2}"})
    assert cfg.d == "maximize" and cfg.g == 2 and cfg.c == 0
    # No folder made: a checkpoint's config is resolved too (the sweeper makes it when it opens the study).
    assert cfg.db == f"sqlite:///{tmp_path}/a/b/s.db" and not (tmp_path / "a").exists()


# -- launchers, end to end --------------------------------------------------------------------------
def _interval(run):
    """(start, end) of a job: Hydra writes .hydra/config.yaml before the task, run() metrics.json last."""
    return (run / ".hydra" / "config.yaml").stat().st_mtime, (run / "metrics.json").stat().st_mtime


def test_parallel_launcher_runs_two_jobs_at_once_with_split_cores(tmp_path):
    tiny = [o for o in TINY if not o.startswith("threads=")]  # threads=null: the launcher splits the cores
    # In this process: the launcher's workers are processes of their own (joblib's), whatever runs the sweep.
    out = cli("run", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *tiny, "model=nice", "seed=1,2",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = run_dirs(tmp_path / "outputs" / "multirun")
    assert len(runs) == 2 and all((r / "metrics.json").exists() for r in runs)
    (s0, e0), (s1, e1) = (_interval(r) for r in runs)
    assert s1 < e0 and s0 < e1, "the two jobs did not overlap"
    pids = {re.match(r"events\.out\.tfevents\.\d+\.[^.]+\.(\d+)", f.name).group(1)
            for r in runs for f in (r / "tb").glob("events*")}
    assert len(pids) == 2  # two worker processes
    threads = [int(t) for r in runs for t in re.findall(r"(\d+) thread\(s\)", (r / "run.log").read_text())]
    assert len(threads) == 2 and all(2 * t <= max(2, launch.cores_owned()) for t in threads)


def test_submitit_local_launcher_runs_a_job(tmp_path):
    # In this process: submitit's job runs in its own process and writes only files.
    out = cli("run", "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5", *TINY, "model=nice",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "outputs" / "multirun")
    assert (run / "metrics.json").exists() and (run / "checkpoints" / "best.ckpt").exists()
    assert list(run.parent.glob(".submitit/*/*_result.pkl"))  # ran through submitit, not in-process


@pytest.mark.slow
def test_optuna_study_is_stored_and_resumed(tmp_path):
    """hydra/sweeper=search (our Optuna 4+ sweeper): trials stored, resumed, best written, `report` reads it."""
    optuna = pytest.importorskip("optuna")
    import json

    import yaml

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["run", "-m", "hydra/sweeper=search", "hydra.sweeper.n_trials=2", "hydra.sweeper.study_name=toy",
            f"hydra.sweeper.storage={storage}", *TINY, "model=nice", "model.flow.transforms=choice(1,2,3)"]
    for _ in range(2):
        out = cli(*args, cwd=tmp_path)  # in this process: the basic launcher runs the trials here
        assert out.returncode == 0, out.stderr[-3000:]
    name = "toy [max_epochs=1 max_steps=-1 max_time=null dataset.n=256]"  # keyed by the trials' budget (TINY)
    assert f"Best of study '{name}' (4 complete): trial" in out.stdout
    study = optuna.load_study(study_name=name, storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4 and study.direction == optuna.study.StudyDirection.MINIMIZE  # metric.mode: min
    assert all(t.params["model.flow.transforms"] in (1, 2, 3) for t in done)
    # Each trial's value is its run's monitored metric.
    runs = run_dirs(tmp_path / "outputs" / "multirun")
    recorded = sorted(json.loads((r / "metrics.json").read_text())["metrics"]["multivariate/energy"] for r in runs)
    assert sorted(t.value for t in done) == pytest.approx(recorded)
    # The study's best trial beside the second sweep's jobs; `report` tabulates a search folder.
    sweeps = sorted({r.parent for r in runs})
    result = yaml.safe_load((sweeps[-1] / "optimization_results.yaml").read_text())
    assert result["best_value"] == pytest.approx(study.best_value) and result["trials"] == {"complete": 4}
    assert f"model.flow.transforms={study.best_params['model.flow.transforms']}" in result["best_overrides"]
    report = cli("report", str(sweeps[-1]), "--no-plots", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "2 jobs: 2 finished" in report.stdout
