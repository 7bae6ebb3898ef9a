"""Generation speed on the CPU: surrogate responses per second against the simulator's events per second.

Usage:
    python scripts/tpc_speed.py                                 # the baseline generator (untrained weights)
    python scripts/tpc_speed.py --models wgan_gp,cvae,realnvp,maf
    python scripts/tpc_speed.py --checkpoint <run>/checkpoints/best.ckpt

The surrogate generates ``--batch`` (10,000) responses per call, for conditions drawn like the
simulator's, in data units (the inverse amplitude scaling included); the time per response does not
depend on the weights, so untrained models built from the presets measure the same as trained ones.
``simulate_tpc`` makes the same number of events (with its default physics). Best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"wgan_gp": "tpc_baseline", "gan": "tpc_gan_gp", "cramer_gan": "tpc_cramer_gan", "cvae": "tpc_cvae",
           "realnvp": "tpc_realnvp", "maf": "tpc_maf"}


def build_model(model: str):
    """The preset's model, built for the simulator dataset's shapes (no data are made)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate

    from gentwin.domains.tpc.transforms import LogScale

    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose(config_name="run", overrides=[f"experiment={PRESETS[model]}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return instantiate(cfg.model, shape=(8, 16), cond_dim=5, transform=LogScale()).eval()


def best_rate(f, n: int, repeats: int, budget_s: float = 20.0) -> float:
    """``n`` / the best time of ``repeats`` calls (fewer when they exceed ``budget_s``), after a warm-up."""
    t0 = time.perf_counter()
    f()
    times = [time.perf_counter() - t0]  # the warm-up counts when a call is slow (MAF sampling)
    while len(times) <= repeats and sum(times) < budget_s:
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return n / min(times[1:] or times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="wgan_gp", help=f"comma list of {sorted(PRESETS)} or 'all'")
    p.add_argument("--checkpoint", type=Path, default=None, help="a trained model instead of --models")
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from gentwin.domains.tpc.simulator import simulate_tpc

    rng = np.random.default_rng(0)
    sim_rate = best_rate(lambda: simulate_tpc(a.batch, rng), a.batch, max(1, a.repeats // 2))
    events = simulate_tpc(a.batch, np.random.default_rng(1))
    c = torch.as_tensor(events.conditions())

    if a.checkpoint is not None:
        from gentwin.training.checkpoint import load_model

        surrogates = {a.checkpoint.name: load_model(a.checkpoint)}
    else:
        names = sorted(PRESETS) if a.models == "all" else a.models.split(",")
        surrogates = {m: build_model(m) for m in names}

    print(f"CPU, {a.threads} thread(s), batch {a.batch:,}")
    print(f"  {'simulate_tpc':14s} {sim_rate:14,.0f} events/s")
    for name, model in surrogates.items():
        rate = best_rate(lambda m=model: m.sample(a.batch, c, batch_size=a.batch), a.batch, a.repeats)
        print(f"  {name:14s} {rate:14,.0f} responses/s   {rate / sim_rate:8.1f} x the simulator")
    return 0


if __name__ == "__main__":
    sys.exit(main())
