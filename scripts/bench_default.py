"""The default `run` (no arguments) over five training seeds: its monitored metric against its floor.

Usage: python scripts/bench_default.py [OUT] — one run at a time, one thread each; prints one line per
seed (value, floor ± spread, ratio, wall time) and whether every seed ends within MARGIN x its floor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

MARGIN = 2.0  # the README's promise: the default run ends within 2x its real-vs-real floor

out = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/bench_default")
rows = []
for seed in range(1, 6):
    folder = out / f"seed{seed}"
    if not (folder / "metrics.json").exists():
        subprocess.run(["run", f"seed={seed}", "threads=1", f"hydra.run.dir={folder}"], check=True,
                       stdout=subprocess.DEVNULL)
    data = json.loads((folder / "metrics.json").read_text())
    m, key = data["metrics"], data["monitor"].removeprefix("val/")
    value, floor, spread = m[key], m[f"{key}_floor"], m[f"{key}_floor_std"]
    rows.append(value / floor)
    print(f"seed {seed}: {key} {value:.4f}  floor {floor:.4f} ± {spread:.4f}  {value / floor:.2f}x  "
          f"best epoch {m.get('best_epoch', 0):.0f}  {m['wall_time_s']:.0f} s training", flush=True)
print(f"within {MARGIN}x the floor: {sum(r <= MARGIN for r in rows)}/{len(rows)} seeds; worst {max(rows):.2f}x")
