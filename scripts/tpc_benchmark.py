"""TPC benchmark: profile chi2 against wall time for a fixed CPU budget, on the real MPD file.

Trains each model with its preset (``configs/experiment/tpc_*.yaml``) on the digits file (75:25 split,
1250 held-out events for the 5000-event file) for ``--minutes`` of wall time, one run after the other,
and prints the chi2 of every validation against minutes and epochs, the real-vs-real floor of the same
split (what a perfect generator would score with 1250 events), and a comparison table.

Usage:
    python scripts/tpc_benchmark.py                           # wgan_gp (the baseline), 20 minutes
    python scripts/tpc_benchmark.py --models wgan_gp_fast     # its nets at lr 1e-3 decayed x0.99 per epoch
    python scripts/tpc_benchmark.py --models wgan_gp_cpu --minutes 60   # tpc_cpu: 2 critic steps, lr held at 1e-4
    python scripts/tpc_benchmark.py --minutes 2 --models all  # every conditional model, 2 minutes each
    python scripts/tpc_benchmark.py --threads 2               # only when nothing else runs on the CPU
    python scripts/tpc_benchmark.py --set optimizer.lr=1e-3   # any Hydra override on top of the presets

The issue's target: chi2 6,800 in under 5 minutes (the baseline's TensorFlow code needs about 15), then
on towards the floor. Validation (the 100-bootstrap chi2, the distances and the figures) runs about every
``--val-seconds`` of training, calibrated per model from a few timed steps, so it costs ~10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT.parent / "shared/data/tpc/digits_v4plus_shortFixedPt.dat"
PRESETS = {"wgan_gp": "tpc_baseline", "wgan_gp_fast": "tpc_fast", "wgan_gp_cpu": "tpc_cpu", "gan": "tpc_gan_gp",
           "cramer_gan": "tpc_cramer_gan", "cvae": "tpc_cvae",
           "realnvp": "tpc_realnvp", "maf": "tpc_maf"}
TARGET = 6800.0


def overrides(model: str, path: Path, threads: int, seed: int, extra: list[str] = ()) -> list[str]:
    return [f"experiment={PRESETS[model]}", f"dataset.path={path}", "dataset.n=null", f"threads={threads}",
            f"seed={seed}", *extra]


def compose(args: list[str]):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = hydra_compose(config_name="run", overrides=args, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def floor(cfg, draws: int = 5) -> tuple[float, float, int]:
    """chi2 of the held-out events against as many training events (their own conditions): mean, std, N."""
    import torch

    from gentwin.domains.tpc.metrics import tpc_chi2
    from gentwin.training.fit import build

    dm, _ = build(cfg)
    n = len(dm.x_raw_val)
    with torch.no_grad():
        train = dm.transform.inverse(dm.x_train).numpy()
    c_train = dm.c_train.numpy()
    real = dm.properties(dm.x_raw_val, None)
    values = []
    for seed in range(draws):
        pick = np.random.default_rng(seed).choice(len(train), n, replace=False)
        r = tpc_chi2(real, dm.properties(train[pick], None), dm.conditions(dm.c_raw_val),
                     cond_fake=dm.conditions(c_train[pick]), seed=seed)
        values.append(r["chi2"])
    return float(np.mean(values)), float(np.std(values)), n


def seconds_per_epoch(cfg, steps: int = 6) -> float:
    """Training time of one epoch, from a few timed steps of the model built by ``cfg``."""
    import logging
    import warnings

    import lightning as L

    from gentwin.training.fit import build
    from gentwin.training.launch import set_threads

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    set_threads(cfg.threads)
    dm, model = build(cfg)
    kw = dict(limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    L.Trainer(max_steps=2, **kw).fit(model, datamodule=dm)  # warm-up
    t0 = time.perf_counter()
    L.Trainer(max_steps=steps, **kw).fit(model, datamodule=dm)
    return (time.perf_counter() - t0) / steps * dm.steps_per_epoch()


def read_curve(run_dir: Path) -> list[tuple[float, int, float]]:
    """``(minutes since the first training step, epochs done, val/chi2)`` of every validation."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if "val/chi2" not in tags:
        return []
    starts = [acc.Scalars(t)[0].wall_time for t in tags if t.startswith("train/")]
    t0 = min(starts) if starts else acc.Scalars("val/chi2")[0].wall_time
    epochs = {e.step: int(e.value) + 1 for e in acc.Scalars("epoch")} if "epoch" in tags else {}
    return [((e.wall_time - t0) / 60, epochs.get(e.step, -1), e.value) for e in acc.Scalars("val/chi2")]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--file", type=Path, default=DEFAULT_FILE, help="digits file (default: the shared MPD file)")
    p.add_argument("--minutes", type=float, default=20.0, help="wall-time budget per model")
    p.add_argument("--models", default="wgan_gp", help=f"comma list of {sorted(PRESETS)} or 'all'")
    p.add_argument("--threads", type=int, default=1, help="torch threads (2 only when nothing else runs)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--val-seconds", type=float, default=30.0, help="training seconds between validations")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra Hydra override for every model, e.g. --set optimizer.lr=1e-3 (repeatable)")
    p.add_argument("--out", type=Path, default=None, help="folder for the runs (default outputs/tpc_benchmark/...)")
    p.add_argument("--table", type=Path, nargs="+", metavar="RUN_DIR",
                   help="only print the comparison table of finished runs (model folders of earlier benchmarks)")
    a = p.parse_args()
    if a.table:
        table(a.table)
        return 0
    models = sorted(PRESETS) if a.models == "all" else a.models.split(",")
    unknown = [m for m in models if m not in PRESETS]
    if unknown:
        p.error(f"unknown models {unknown}; choose from {sorted(PRESETS)}")
    if not a.file.is_file():
        p.error(f"{a.file}: no such digits file")
    out = a.out or ROOT / "outputs" / "tpc_benchmark" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    out.mkdir(parents=True, exist_ok=True)

    f_mean, f_std, n_test = floor(compose(overrides(models[0], a.file, a.threads, a.seed, a.set)))
    print(f"real-vs-real floor on this split: chi2 {f_mean:.0f} +- {f_std:.0f} ({n_test} vs {n_test} events)")

    run_exe = str(Path(sys.executable).with_name("run"))
    for model in models:
        base = overrides(model, a.file, a.threads, a.seed, a.set)
        epoch_s = seconds_per_epoch(compose(base))
        every = max(1, round(a.val_seconds / epoch_s))
        total = int(a.minutes * 60)
        cmd = [run_exe, *base, "trainer.max_epochs=1000000", f"trainer.check_val_every_n_epoch={every}",
               "metric.figures_every=5",
               f"++trainer.max_time=00:{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}",
               f"hydra.run.dir={out / model}"]
        print(f"\n== {model}: {epoch_s:.2f} s/epoch measured, validation every {every} epochs\n$ {' '.join(cmd)}",
              flush=True)
        with (out / f"{model}.log").open("w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "CI": "1"})
        if proc.returncode:
            print(f"   failed (exit {proc.returncode}): see {out / f'{model}.log'}")
            continue
        print(f"   {'minutes':>8s} {'epochs':>7s} {'chi2':>10s}")
        for minutes, epochs, chi2 in read_curve(out / model):
            print(f"   {minutes:8.2f} {epochs:7d} {chi2:10.1f}")

    print(f"\nTPC benchmark, {a.file.name}, {a.minutes:g} min per model, {a.threads} thread(s)")
    table([out / m for m in models], (f_mean, f_std))
    print(f"runs: {out}")
    return 0


def summarize(run_dir: Path) -> dict | None:
    """The benchmark figures of one finished run folder, or ``None`` when it has no ``metrics.json``."""
    if not (run_dir / "metrics.json").is_file():
        return None
    curve = read_curve(run_dir)
    m = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    best = min(curve, key=lambda r: r[2]) if curve else (float("nan"), -1, float("nan"))
    return dict(epochs=m["epochs"], s_epoch=m["wall_time_s"] / max(m["epochs"], 1), best=best,
                final=m.get("chi2", float("nan")), amp=m.get("chi2/chi2_amp", float("nan")),
                auc=m.get("classifier/auc", float("nan")), fpd=m.get("fpd", float("nan")),
                reached=next(((t, e) for t, e, c in curve if c <= TARGET), None),
                rate=m.get("samples_per_second", float("nan")),
                sparsity={k: (m.get(f"sparsity/{k}", float("nan")), m.get(f"sparsity/{k}_floor", float("nan")))
                          for k in SPARSITY},
                faint=m.get("sparsity/n_faint_mean_fake", float("nan")))


#: Sparsity distances of the final evaluation, each printed beside its real-vs-real floor.
SPARSITY = ("n_hits_chi2", "n_hits_w1", "spectrum_w1", "spectrum_chi2")


def table(run_dirs: list[Path], floor_: tuple[float, float] | None = None) -> None:
    """Prints the comparison table of finished benchmark runs (one folder per model)."""
    if floor_ is not None:
        print(f"real-vs-real floor: chi2 {floor_[0]:.0f} +- {floor_[1]:.0f}")
    print("s/epoch: over the whole fit, validations included; best: the lowest val/chi2 (at minute); "
          "final: the best checkpoint re-evaluated with a new sample, with chi2_amp, classifier AUC and FPD")
    head = (f"{'model':13s} {'epochs':>7s} {'s/epoch':>8s} {'best chi2 (min)':>17s} {'final chi2':>11s} "
            f"{'chi2_amp':>10s} {'AUC':>6s} {'FPD':>8s} {'min to ' + format(TARGET, '.0f'):>16s} {'samples/s':>10s}")
    print(head)
    for run_dir in run_dirs:
        r = summarize(run_dir)
        if r is None:
            print(f"{run_dir.name:13s} failed or unfinished")
            continue
        reach = f"{r['reached'][0]:.2f} (ep {r['reached'][1]})" if r["reached"] else "not reached"
        best = f"{r['best'][2]:.0f} ({r['best'][0]:.1f})"
        print(f"{run_dir.name:13s} {r['epochs']:7d} {r['s_epoch']:8.2f} {best:>17s} {r['final']:11.0f} "
              f"{r['amp']:10.0f} {r['auc']:6.3f} {r['fpd']:8.3f} {reach:>16s} {r['rate']:10.0f}")
    print("\nsparsity of the final evaluation, value / real-vs-real floor (gentwin.domains.tpc.sparsity); "
          "faint: cells of 0.09-0.9 per response (real: 0)")
    print(f"{'model':13s} " + " ".join(f"{k:>22s}" for k in SPARSITY) + f" {'faint':>7s}")
    for run_dir in run_dirs:
        r = summarize(run_dir)
        if r is not None:
            cells = [f"{v:.3g} / {f:.3g}" for v, f in r["sparsity"].values()]
            print(f"{run_dir.name:13s} " + " ".join(f"{c:>22s}" for c in cells) + f" {r['faint']:7.2f}")


if __name__ == "__main__":
    sys.exit(main())
