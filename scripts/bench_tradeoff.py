"""Fidelity against generation speed, family by family, on the same data: the trade-off table.

For each run folder (or checkpoint), its model's final evaluation on the held-out events (the domain's
metrics and the classifier AUC, ``gentwin.evaluate.final_evaluation`` with the run's seed: a run's own
``metrics.json`` numbers for the checkpoint it ended with) beside the time per sample of ``sample`` at
batch 1, 100 and 10,000 (``gentwin.timing.torch_times``, CPU, ``--threads``). A model that solves an
ODE (flow matching) is evaluated and timed again at each of ``--steps`` (``sample ... steps=N``).

    python scripts/bench_tradeoff.py outputs/<date>/<run> [<run> ...] [--steps 5,10,20,40]
        [--keys chi2,auc,n_hits,spectrum,faint,empty] [--threads 1] [--repeats 3] [--markdown]

Rows: the folder's name, the steps, each metric whose name (after its last ``/``) is one of ``--keys`` (its
``_floor`` beside it where the metric entry gives one), then samples per second at each batch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch


def checkpoint_of(path: Path) -> Path:
    """A run folder's best (else last) checkpoint, or ``path`` itself when it is a file."""
    if path.is_file():
        return path
    for name in ("best.ckpt", "last.ckpt"):
        if (path / "checkpoints" / name).is_file():
            return path / "checkpoints" / name
    raise SystemExit(f"{path}: no checkpoints/best.ckpt or last.ckpt")


def rows_of(ckpt: Path, steps: list[int], keys: list[str], repeats: int) -> list[dict]:
    from gentwin.training.checkpoint import load_model, metric_entries, read_checkpoint, safe_instantiate
    from gentwin.training.evaluate import final_evaluation
    from gentwin.training.timing import torch_times

    info = read_checkpoint(ckpt)["gentwin"]
    model = load_model(ckpt)
    dm = safe_instantiate(info["dataset"], ckpt, "dataset")
    dm.setup()
    entries = metric_entries(model.build_info, str(ckpt))
    try:
        model.set_sampling()
        settings = steps
    except NotImplementedError:
        settings = [None]  # one pass: one row
    name = ckpt.parent.parent.name if ckpt.parent.name == "checkpoints" else ckpt.stem
    out = []
    for s in settings:
        if s is not None:
            model.set_sampling(steps=s)
        metrics, _, _ = final_evaluation(model, dm, entries, seed=info.get("seed") or 0, figures=False)
        shown = {k: v for k, v in metrics.items() if k.rsplit("/", 1)[-1].removesuffix("_floor") in keys or k in keys}
        cond = None if dm.c_val is None else dm.c_val.numpy()
        times = torch_times(model, repeats=repeats, cond=cond)
        out.append({"run": name, "family": type(model).__name__, "steps": "-" if s is None else s, **shown,
                    **{f"per_s@{b}": 1.0 / t["mean_s"] for b, t in times.items()}})  # mean_s: per sample
        print(f"  {name} steps={out[-1]['steps']}: done", file=sys.stderr)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders or checkpoints")
    p.add_argument("--steps", default="5,10,20,40", help="solver steps of ODE models, comma list")
    p.add_argument("--keys", default="chi2,auc,n_hits_chi2,spectrum_w1,n_faint_mean_fake,empty_fraction_diff,nll",
                   help="metric names (the last part after '/'), each with its _floor when there is one")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--markdown", action="store_true", help="a Markdown table")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    steps, keys = [int(s) for s in a.steps.split(",")], a.keys.split(",")
    rows = [r for run in a.runs for r in rows_of(checkpoint_of(run), steps, keys, a.repeats)]
    cols = list(dict.fromkeys(k for r in rows for k in r))
    fmt = lambda v: v if isinstance(v, str | int) else f"{v:,.4g}"  # noqa: E731
    if a.markdown:
        print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(fmt(r.get(c, ""))) for c in cols) + " |")
    else:
        for r in rows:
            print("  ".join(f"{c}={fmt(r[c])}" for c in cols if c in r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
