"""Fidelity against generation speed, family by family, on the same data: the trade-off table.

Each run folder's model is evaluated again as its run's final evaluation did
(``gentwin.training.evaluate.final_evaluation`` with the run's seed, on all held-out events: the domain's
metrics with their floors, the classifier AUC, and the samples per second of ``sample`` at batch 1,
100 and 10,000), and a model that solves an ODE (flow matching) once more at each of ``--steps``
(``sample ... steps=N``). The table is ``report view=tradeoff``'s, one line per run and step count.

    python scripts/bench_tradeoff.py outputs/<date>/<run> [<run> ...] [--steps 5,10,20,40]
        [--metrics classifier/auc,...] [--reference] [--threads 1]

A run's own line (its trained steps) repeats its ``metrics.json``, the speeds aside (measurements).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch


def checkpoint_of(run: Path) -> Path:
    """The checkpoint a run's final evaluation used (``metrics.json``'s ``final_weights``), else best/last."""
    import json

    summary = run / "metrics.json"
    names = [json.loads(summary.read_text()).get("final_weights")] if summary.is_file() else []
    for name in [*[n for n in names if n], "best", "last"]:
        if (run / "checkpoints" / f"{name}.ckpt").is_file():
            return run / "checkpoints" / f"{name}.ckpt"
    raise SystemExit(f"{run}: no checkpoints/best.ckpt or last.ckpt")


def jobs_of(run: Path, steps: list[int], reference: bool = False):
    """The run's job record, once per step count (its own first), with re-evaluated metrics."""
    from gentwin.report import read_job
    from gentwin.training.checkpoint import load_model, metric_entries, read_checkpoint, safe_instantiate
    from gentwin.training.evaluate import final_evaluation

    job = read_job(run)
    ckpt = checkpoint_of(run)
    info = read_checkpoint(ckpt)["gentwin"]
    model = load_model(ckpt)
    dm = safe_instantiate(info["dataset"], ckpt, "dataset")
    dm.setup()
    entries = metric_entries(model.build_info, str(ckpt))
    try:
        model.set_sampling()
        own = model.steps
        solver = model.solver
        settings = [(solver, own), *[(solver, s) for s in steps if s != own]] + ([("dopri5", own)] if reference else [])
    except NotImplementedError:
        settings = [(None, None)]  # one network pass: one line
    out = []
    for solver, s in settings:
        if s is not None:
            model.set_sampling(steps=s, solver=solver)
        metrics, _, _ = final_evaluation(model, dm, entries, seed=info.get("seed") or 0, figures=False)
        metrics["wall_time_s"] = job.metrics.get("wall_time_s", float("nan"))
        label = "" if s is None else "dopri5 (adaptive, tol 1e-5)" if solver == "dopri5" else f"{solver} x {s}"
        name = run.name if s is None else f"{run.name} ({label})"
        out.append(dataclasses.replace(job, path=Path(name), metrics=metrics, sampler=label))
        print(f"  {name}: evaluated", file=sys.stderr)
    return out


def main() -> int:
    from gentwin.report import Report, tradeoff_table

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders")
    p.add_argument("--steps", default="5,10,20,40", help="solver steps of ODE models, comma list")
    p.add_argument("--metrics", default=None, help="fidelity columns beside the monitored metric "
                   "(default: the classifier AUC and the TPC sparsity statistics)")
    p.add_argument("--reference", action="store_true", help="an ODE model once more with the adaptive dopri5 "
                   "solver: what the fixed-step lines converge to")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    steps = [int(s) for s in a.steps.split(",")]
    jobs = [j for run in a.runs for j in jobs_of(run, steps, a.reference)]
    monitors = [j.monitor for j in jobs if j.monitor]
    rep = Report(Path("."), jobs, [], [], {}, [], monitors[0] if monitors else None, None)
    print("\n".join(tradeoff_table(rep, a.metrics.split(",") if a.metrics else None)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
