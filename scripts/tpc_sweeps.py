"""The TPC studies of seed 003 as Hydra multiruns, each over seed=1,2,3 (the seed's three "TESTs").

Usage:
    python scripts/tpc_sweeps.py                         # print every study's command (paper scale)
    python scripts/tpc_sweeps.py --cpu-scale 0.05        # epochs x 0.05 (4000 -> 200) for a CPU
    python scripts/tpc_sweeps.py --study wgan_latent --run --cpu-scale 0.05 --threads 1
    python scripts/tpc_sweeps.py --dataset tpc_mpd --path <digits.dat>   # the real file instead

Paper scale (4000 epochs for the GANs and the CVAE, 10,000 for RealNVP, three seeds per point) is
many hours per run on a CPU core: it is meant for GPUs or a cluster (add ``trainer=gpu``, or a Hydra
launcher). ``--cpu-scale`` multiplies the epochs (and the epochs at which a table reads chi2), keeping
about 100 validations per run. Each study prints the seed table it reproduces; ``report <sweep folder>``
prints mean +- std over the seeds per swept value (``val/chi2`` of the best checkpoint; for Tables 4-6
read ``val/chi2`` at the listed epochs from TensorBoard).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from dataclasses import dataclass, field

SEEDS = "seed=1,2,3"


@dataclass(frozen=True)
class Study:
    name: str
    table: str
    experiment: str
    sweep: list[str]
    epochs: int = 4000
    read_at: tuple[int, ...] = ()
    extra: list[str] = field(default_factory=list)


STUDIES = [
    Study("wgan_latent", "Table 1: WGAN-GP latent dimension (chi2 440 +- 27 at 32 ... 609 +- 122 at 4)",
          "tpc_baseline", ["model.latent_dim=32,24,16,12,8,4"]),
    Study("wgan_hidden", "Table 2: WGAN-GP generator hidden layers (440 at [32,64,64,64,128] ... 1060 at [12,...])",
          "tpc_baseline",
          ["model.generator.hidden=[32,64,64,64,128],[32,32,64,64,128],[24,32,64,64,128],[12,32,32,32,128]"]),
    Study("wgan_lr", "Table 3: WGAN-GP learning rate (29,800 / 1,126 / 440 / 20,700)",
          "tpc_baseline", ["optimizer.lr=1e-5,5e-5,1e-4,1e-3"]),
    Study("gan_gp", "Tables 4-5: vanilla GAN gradient penalty, chi2 at 1000 and 4000 epochs (best 411 at 50)",
          "tpc_gan_gp", ["model.loss.gp_weight=0,1,5,10,50,100"], read_at=(1000, 4000)),
    Study("cramer_gp", "Table 6: Cramer GAN gradient penalty, chi2 at 1000 and 4000 epochs (best 1728 at 10)",
          "tpc_cramer_gan", ["model.loss.gp_weight=0,1,10,100"], read_at=(1000, 4000)),
    Study("cvae_latent", "§5.4.2: CVAE latent dimension at batch 256 (33,758 / 32,163 / 28,975)",
          "tpc_cvae", ["model.latent_dim=16,32,64"]),
    Study("cvae_batch", "§5.4.2: CVAE batch size at latent 64 (21,711 / 17,813 / 14,490)",
          "tpc_cvae", ["dataset.batch_size=128,64,32"], extra=["model.latent_dim=64"]),
    Study("realnvp_layers", "Table 8: RealNVP coupling layers x batch (best 6,969 at 12 layers, batch 256)",
          "tpc_realnvp", ["model.flow.transforms=2,4,6,12", "dataset.batch_size=128,256"], epochs=10_000),
]


def command(study: Study, scale: float, dataset: str | None, path: str | None, threads: int | None,
            extra: list[str]) -> list[str]:
    epochs = max(1, round(study.epochs * scale))
    every = max(1, epochs // 100)
    for at in study.read_at:  # validate exactly at the epochs the table reads
        every = _gcd(every, max(1, round(at * scale)))
    args = ["run", "-m", f"experiment={study.experiment}", *study.sweep, SEEDS, *study.extra,
            f"trainer.max_epochs={epochs}", f"trainer.check_val_every_n_epoch={every}"]
    if dataset:
        args.append(f"dataset={dataset}")
    if path:
        args.append(f"dataset.path={path}")
    if threads:
        args.append(f"threads={threads}")
    return args + extra


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--study", action="append", choices=[s.name for s in STUDIES], help="default: all")
    p.add_argument("--cpu-scale", type=float, default=1.0, help="multiply the epochs (e.g. 0.05 on a CPU)")
    p.add_argument("--dataset", default=None, help="tpc (the presets' default: simulator) or tpc_mpd")
    p.add_argument("--path", default=None, help="digits file for --dataset tpc_mpd")
    p.add_argument("--threads", type=int, default=None, help="threads per job (1 when sharing the CPU)")
    p.add_argument("--run", action="store_true", help="run the multiruns one after the other (else print)")
    p.add_argument("overrides", nargs="*", help="further overrides for every job, e.g. trainer=gpu")
    a = p.parse_args()
    if not 0 < a.cpu_scale <= 1:
        p.error("--cpu-scale must be in (0, 1]")
    chosen = [s for s in STUDIES if not a.study or s.name in a.study]
    for study in chosen:
        cmd = command(study, a.cpu_scale, a.dataset, a.path, a.threads, a.overrides)
        reads = ""
        if study.read_at:
            reads = "; read val/chi2 at epochs " + ", ".join(str(max(1, round(e * a.cpu_scale))) for e in study.read_at)
        print(f"# {study.name}: {study.table}{reads}")
        print(shlex.join(cmd), flush=True)
        if a.run:
            code = subprocess.run(cmd).returncode
            if code:
                print(f"# {study.name} failed (exit {code})", file=sys.stderr)
                return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
