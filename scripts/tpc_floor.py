"""Real-vs-real floor of the TPC profile chi2, the simulator's floor and speed, simulated vs real images.

Usage: python scripts/tpc_floor.py [digits.dat]   (default: <repo>/../shared/data/tpc/digits_v4plus_shortFixedPt.dat)

The floor is the chi2 of real test events (25 %) against an equal number of real training events: what
a perfect generator would score with that many events.
"""

import sys
import time
from pathlib import Path

import numpy as np

from gentwin.domains.tpc.metrics import tpc_chi2
from gentwin.domains.tpc.properties import tpc_properties
from gentwin.domains.tpc.reader import TPCEvents, read_digits
from gentwin.domains.tpc.simulator import simulate_tpc

DEFAULT_FILE = Path(__file__).resolve().parents[1].parent / "shared/data/tpc/digits_v4plus_shortFixedPt.dat"
V4PLUS = ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate", "row", "pT"]
N_SPLITS = 5


def floor(events: TPCEvents, seed: int, n_test: int | None = None) -> dict[str, float]:
    """chi2 of the test part (75:25 split) against as many training events (or n_test of each)."""
    train, test = events.split(0.25, seed=seed)
    rng = np.random.default_rng(seed)
    n = len(test) if n_test is None else n_test
    test = test.subset(rng.choice(len(test), n, replace=False))
    other = train.subset(rng.choice(len(train), n, replace=False))
    return tpc_chi2(
        tpc_properties(test.images),
        tpc_properties(other.images),
        test.profile_variables(),
        cond_fake=other.profile_variables(),
        seed=seed,
    )


def summarize(name: str, results: list[dict[str, float]]) -> None:
    for key in ("chi2", "chi2_amp", "skipped_bins"):
        values = np.array([r[key] for r in results])
        print(f"  {name:34s} {key:13s} {values.mean():8.1f} +- {values.std():6.1f}  {np.round(values, 1)}")


def describe(events: TPCEvents) -> str:
    p = tpc_properties(events.images)
    hits = (events.images > 0).sum(axis=(1, 2))
    return (
        f"Sigma0^2 {np.nanmean(p['Sigma0^2']):.3f}  Sigma1^2 {np.nanmean(p['Sigma1^2']):.3f}  "
        f"Cov01 {np.nanmean(p['Cov01']):+.4f}  Sum mean {p['Sum'].mean():6.0f} median {np.median(p['Sum']):5.0f} "
        f"p95 {np.percentile(p['Sum'], 95):5.0f}  hits/event {hits.mean():.1f}  "
        f"out-of-window hits {events.n_out_of_window_hits}"
    )


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FILE

    times = []
    for seed in range(3):
        start = time.perf_counter()
        sim = simulate_tpc(20000, np.random.default_rng(seed))
        times.append(time.perf_counter() - start)
    print(f"simulate_tpc: 20,000 events in {min(times):.2f} s (best of 3): {20000 / min(times):,.0f} events/s")

    sim_results = [floor(sim, s) for s in range(N_SPLITS)]
    sim_small = [floor(sim, s, n_test=1250) for s in range(N_SPLITS)]
    print(f"chi2 floor, mean +- std over {N_SPLITS} splits (values per split):")
    summarize("simulator, 5000 vs 5000", sim_results)
    summarize("simulator, 1250 vs 1250", sim_small)

    if not path.exists():
        print(f"{path} not found: no real-data floor")
        return
    real = read_digits(path, V4PLUS)
    summarize(f"real file, {len(real) // 4} vs {len(real) // 4}", [floor(real, s) for s in range(N_SPLITS)])

    _, test = real.split(0.25, seed=0)
    fake = sim.subset(np.arange(len(test)))
    versus = tpc_chi2(
        tpc_properties(test.images),
        tpc_properties(fake.images),
        test.profile_variables(),
        cond_fake=fake.profile_variables(),
    )
    print(f"  simulator vs real test events     chi2 {versus['chi2']:.0f}  chi2_amp {versus['chi2_amp']:.0f}")
    print("mean properties:")
    print(f"  real      {describe(real)}")
    print(f"  simulated {describe(sim)}")


if __name__ == "__main__":
    main()
