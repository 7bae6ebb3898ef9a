"""A CaloChallenge-shaped example file: photon showers in the 368 voxels of dataset 1's layout.

    python scripts/make_calo_example.py out.h5 [--n 20000] [--seed 0] [--layer-scale 2:1.1] [--radius-scale 1.0]

Writes ``incident_energies`` ``(N, 1)`` and ``showers`` ``(N, 368)`` in MeV, the names CaloChallenge's
files use, for ``examples/calorimeter/binning_dataset_1_photons.xml``. Not a simulation of ATLAS:
a physically shaped toy, seeded, for trying the calorimeter evaluation. Incident energies are
log-uniform in 256 MeV .. 4 TeV (dataset 1's range). The longitudinal profile is Longo's gamma
distribution ``dE/dt ~ t^(a-1) e^(-b t)`` (t in radiation lengths, b = 0.5, shower maximum
``(a-1)/b = ln(E/E_c) - 0.5`` for photons, E_c = 7.4 MeV), integrated over each layer's depth and
jittered per shower; the radial profile is exponential with a Moliere-like scale growing with depth;
the shower axis is displaced by a few mm, which tilts the alpha bins; deposits are counted in quanta
of 0.5 MeV (Poisson), so faint voxels are empty as in the data. ``--layer-scale L:f`` multiplies layer
L's deposits by f and ``--radius-scale`` the radial scales: a "generated" file with a known flaw.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from scipy.special import gammainc

from gentwin.domains.calorimeter.layout import read_layout

LAYOUT = Path(__file__).resolve().parent.parent / "examples" / "calorimeter" / "binning_dataset_1_photons.xml"
DEPTH = {0: (0.0, 1.0), 1: (1.0, 5.5), 2: (5.5, 21.5), 3: (21.5, 24.0), 12: (24.0, 60.0)}  # radiation lengths
RADIUS = {0: 15.0, 1: 6.0, 2: 12.0, 3: 30.0, 12: 80.0}  # mm, exponential radial scale
QUANTUM, E_CRIT, SAMPLING = 0.5, 7.4, 0.9  # MeV, MeV, deposited share of the energy


def simulate(n: int, rng: np.random.Generator, layer_scale: dict[int, float] | None = None,
             radius_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(incident (n, 1), showers (n, 368))`` in MeV."""
    layout = read_layout(LAYOUT)
    energy = np.exp(rng.uniform(math.log(256.0), math.log(4.194304e6), n))
    t_max = np.log(energy / E_CRIT) - 0.5
    b = 0.5
    a = 1 + b * t_max * rng.normal(1.0, 0.08, n)  # shower-to-shower jitter of the maximum
    response = SAMPLING * energy * rng.normal(1.0, 0.1 / np.sqrt(energy / 1000.0) + 0.01, n).clip(0.5, 1.5)
    axis = rng.normal(0.0, 2.0, (n, 2))  # mm: displaced shower axis
    showers = []
    for layer in layout.layers:
        lo, hi = DEPTH[layer.id]
        e_layer = response * (gammainc(a, b * hi) - gammainc(a, b * lo))
        e_layer *= (layer_scale or {}).get(layer.id, 1.0)
        r = np.asarray(layer.r_edges)
        scale = RADIUS[layer.id] * radius_scale * rng.normal(1.0, 0.1, (n, 1)).clip(0.5, 1.5)
        radial = np.diff(1 - np.exp(-r[None, :] / scale), axis=1)  # (n, n_r)
        radial /= radial.sum(1, keepdims=True)
        alpha_edges = np.linspace(-math.pi, math.pi, layer.n_alpha + 1)
        alpha = (alpha_edges[:-1] + alpha_edges[1:]) / 2
        r_mid = (r[:-1] + r[1:]) / 2
        # The displaced axis shifts energy towards its side, more in the inner bins.
        tilt = (axis[:, 0, None, None] * np.cos(alpha)[None, :, None] + axis[:, 1, None, None]
                * np.sin(alpha)[None, :, None]) / (r_mid[None, None, :] + scale[:, :, None])
        weight = np.clip(1 + tilt, 0, None) / layer.n_alpha  # (n, n_alpha, n_r)
        mean = e_layer[:, None, None] * weight * radial[:, None, :]
        showers.append((rng.poisson(mean / QUANTUM) * QUANTUM).reshape(n, -1))
    return energy[:, None], np.concatenate(showers, axis=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--n", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layer-scale", default=None, help="L:f multiplies layer L's deposits by f")
    p.add_argument("--radius-scale", type=float, default=1.0)
    args = p.parse_args()
    scale = None
    if args.layer_scale:
        layer, factor = args.layer_scale.split(":")
        scale = {int(layer): float(factor)}
    import h5py

    t0 = time.perf_counter()
    incident, showers = simulate(args.n, np.random.default_rng(args.seed), scale, args.radius_scale)
    with h5py.File(args.out, "w") as f:
        f["incident_energies"] = incident.astype(np.float32)
        f["showers"] = showers.astype(np.float32)
    print(f"wrote {args.out}: {args.n:,} showers x {showers.shape[1]} voxels in {time.perf_counter() - t0:.1f} s; "
          f"non-zero voxels {100 * (showers > 0).mean():.0f} %")


if __name__ == "__main__":
    main()
