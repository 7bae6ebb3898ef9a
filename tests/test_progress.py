"""Progress of the whole job with an ETA: the line printer, and run.log on a terminal and in a pipe."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT, TINY, run_dirs
from gentwin import progress
from gentwin.progress import Lines, duration


def test_lines_every_step_of_the_job_with_the_time_left(monkeypatch):
    clock = iter([0.0, 10.0, 20.0, 25.0, 40.0])  # Lines' start, then one reading per update
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    out = []
    lines = Lines("training", every=1e9, step=0.25, write=out.append)
    assert lines.update(0.25, "epoch 1/4")  # 25 % in 10 s: 30 s left
    assert not lines.update(0.4)  # less than a step since the last line
    assert lines.update(0.5, "epoch 2/4")  # 50 % in 25 s: 25 s left
    assert lines.update(1.0, force=True)
    assert out == ["training  25%  epoch 1/4  10s, ETA 30s", "training  50%  epoch 2/4  25s, ETA 25s",
                   "training 100%  40s, done"]
    assert duration(3725) == "1h02m" and duration(185) == "3m05s"


def test_lines_wait_after_seconds_and_always_say_the_end(monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 6.0, 7.0, 8.0, 9.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    out = []
    lines = Lines("classifier", every=1e9, step=0.5, write=out.append, after=5.0)
    assert not lines.update(0.5) and not lines.update(0.6, force=True)  # a short job says nothing
    assert lines.update(0.7)  # from 5 s on it does
    assert not lines.update(0.9) and lines.update(1.0, "epoch 9/50 (stopped early)")  # the end, less than a step on
    assert not lines.update(1.0)  # ...and only once
    assert out == ["classifier  70%  6s, ETA 3s", "classifier 100%  epoch 9/50 (stopped early)  8s, done"]


def test_steps_inside_a_command_report_only_inside_shown():
    assert progress.job("classifier") is None
    with progress.shown():
        lines = progress.job("classifier")
        assert isinstance(lines, Lines) and lines.after == progress.AFTER and lines.what == "classifier"
    assert progress.job("classifier") is None


def test_a_resumed_job_counts_its_time_from_where_it_restarted(monkeypatch):
    clock = iter([0.0, 10.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    out = []
    Lines("training", step=0.1, write=out.append, start=0.5).update(0.75)  # 25 % of the run in 10 s
    assert out == ["training  75%  10s, ETA 10s"]


def _run(tmp_path, terminal: bool) -> str:
    """A tiny run in a subprocess whose stdout is a pseudo-terminal or a pipe; returns its run.log."""
    args = [sys.executable, "-c", "from gentwin.commands.run import main; main()", *TINY,
            "trainer.max_epochs=3", "dataset.n=512", "model=nice", "model.flow.transforms=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "120"}
    env.pop("CI", None)
    if terminal:
        main, secondary = os.openpty()
        proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=secondary, stderr=secondary)
        os.close(secondary)
        seen = b""
        while True:  # read the terminal until the run closes it
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(timeout=300) == 0, seen.decode(errors="replace")[-2000:]
        os.close(main)
        assert b"ETA" in seen  # the terminal's bar
    else:
        out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert re.search(r"^training .*ETA", out.stdout, re.M)
    (folder,) = run_dirs(tmp_path / "outputs")
    return (folder / "run.log").read_text()


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_run_log_holds_progress_lines_with_an_eta(tmp_path, terminal):
    log = _run(tmp_path, terminal)
    lines = [line for line in log.splitlines() if line.startswith("training ")]
    assert len(lines) >= 5, log
    assert all(re.search(r", (ETA \d+(s|m\d\ds)|done)$", line) for line in lines), lines
    assert any("ETA" in line for line in lines) and lines[-1].startswith("training 100%  epoch 3/3")
    assert sum(line.endswith("done") for line in lines) == 1, lines  # the end said once
    assert "\x1b[" not in log and "\r" not in log  # no terminal redraws in the log
    assert "multivariate/energy" in log and "(floor " in log
