"""`trainer=ddp`: two CPU processes (gloo) train one model, alone and inside a multirun."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import TINY, run_dirs
from conftest import cli as _cli


def cli(*args, **kwargs):
    """In a subprocess: the workers it starts run the console script anew."""
    return _cli(*args, isolated=True, **kwargs)

# threads=null: each of the 2 ranks takes cores // 2 threads.
DDP = ["trainer=ddp", *[o for o in TINY if not o.startswith("threads=")], "dataset.n=400", "model.critic_steps=2"]


@pytest.mark.slow  # ~10 s: a sweep of two 2-process runs
def test_ddp_with_two_cpu_processes_in_a_sweep_trains_and_writes_one_checkpoint_set_per_job(tmp_path):
    out = cli("run", "-m", *DDP, "trainer.max_epochs=2", "seed=1,2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    runs = run_dirs(tmp_path / "outputs")
    assert len(runs) == 2 and {r.name.split("_", 1)[0] for r in runs} == {"0", "1"}
    assert len(list((tmp_path / "outputs" / "multirun").glob("*/*"))) == 1  # one sweep folder, not one per rank
    for run in runs:
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
        summary = json.loads((run / "metrics.json").read_text())
        # Each rank trains on half of each epoch: 300 training samples / 2 ranks / (16 x 2 per step).
        assert summary["metrics"]["steps"] == 2 * (300 // 2 // 32) and summary["metrics"]["epochs"] == 2
        assert summary["best_checkpoint"] == str(run / "checkpoints" / "best.ckpt")
        last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
        assert last["global_step"] == 2 * (300 // 2 // 32) and "gentwin" in last
        assert (run / "samples.npz").exists()
        # Training events come from the forked rank 0, the final ones from the run's own process.
        pids = {f.name.split(".")[-2] for f in (run / "tb").glob("events.out.tfevents.*")}
        assert len(pids) == 2
