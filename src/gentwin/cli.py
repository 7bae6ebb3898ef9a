"""Entry points: ``run`` (a Hydra app), ``report``, ``sample``. Thin: parse, call, exit codes.

Heavy modules (torch, Lightning) are imported only once a run starts, so ``run --help`` is quick.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from gentwin import launch  # registers the resolvers of the launcher/sweeper presets, here and in workers

CONFIGS = Path(os.environ.get("GENTWIN_CONFIGS", Path(__file__).resolve().parents[2] / "configs"))
EXIT_CONFIG, EXIT_DATA, EXIT_DIVERGED = 2, 3, 4


def fail(message: str, code: int) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def _resume_args(argv: list[str]) -> list[str]:
    """``resume=<run folder>`` -> that run's overrides, its folder and its last checkpoint."""
    rest = [a for a in argv if not a.startswith("resume=")]
    folders = [a.split("=", 1)[1] for a in argv if a.startswith("resume=")]
    if not folders:
        return argv
    run_dir = Path(folders[-1])
    ckpt, overrides = run_dir / "checkpoints" / "last.ckpt", run_dir / ".hydra" / "overrides.yaml"
    if not ckpt.exists() or not overrides.exists():
        fail(f"cannot resume {run_dir}: expected {ckpt} and {overrides}", EXIT_CONFIG)
    from omegaconf import OmegaConf

    old = [o for o in OmegaConf.load(overrides) if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    return old + rest + [f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}"]


def _task(cfg) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from gentwin.errors import ConfigError, DataError, Diverged

    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        from gentwin.run import run

        with launch.job_resources(cfg, hc, multirun):
            metrics = run(cfg, out_dir, choices=dict(hc.runtime.choices))
    except Exception as e:
        if multirun:  # one failed job must not stop the sweep: Hydra records it, `report` lists it
            launch.write_error(out_dir, e)
            raise
        if not isinstance(e, ConfigError | DataError | Diverged):
            raise
        if isinstance(e, Diverged):
            fail(f"{e} ({out_dir / 'checkpoints' / 'last.ckpt'})", EXIT_DIVERGED)
        # Nothing was trained: the folder Hydra made for this job holds no result.
        if not (out_dir / "checkpoints").exists():
            shutil.rmtree(out_dir, ignore_errors=True)
        fail(str(e), EXIT_CONFIG if isinstance(e, ConfigError) else EXIT_DATA)
    print(f"\nrun folder:  {out_dir}\ntensorboard: tensorboard --logdir {out_dir / 'tb'}")
    shown = {k: v for k, v in metrics.items() if k.count("/") <= 1 and not k.endswith(("_nbins", "_ndf"))}
    print(f"final {cfg.metric.monitor} = {metrics.get(cfg.metric.monitor, float('nan')):.4g} (metrics.json has all "
          f"{len(metrics)} values)")
    print("  " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items())[:24]))
    return metrics.get(cfg.metric.monitor)


def config_groups(root: Path = CONFIGS) -> dict[str, list[str]]:
    """``group -> options`` from the config folder (nested groups as ``schedule/lr``)."""
    groups = {}
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        name = str(d.relative_to(root))
        if name == "hydra" or name == "dataset_model":  # Hydra's own node; applied automatically
            continue
        options = sorted(f.stem for f in d.glob("*.yaml"))
        if options:
            groups[name] = options
    return groups


def help_text() -> str:
    lines = ["run: train and evaluate a deep generative surrogate (gentwin).", "",
             "Usage: run [group=option ...] [key=value ...]     run -m key=a,b,c ...  (a sweep)", "",
             "Config groups (group=option):"]
    for group, options in config_groups().items():
        lines.append(f"  {group:15s} {', '.join(options)}")
    lines += ["", "Specializations configs/dataset_model/<dataset>_<model>.yaml apply by themselves (e.g. the",
              "TPC baseline's conv critic for model=wgan_gp dataset=tpc)."]
    lines += ["", "Examples:",
              "  run                                        # the quick default on the CPU",
              "  run model=realnvp dataset=circles          # pick options of groups",
              "  run model.latent_dim=8 optimizer.lr=3e-4   # override values",
              "  run -m model.latent_dim=4,8,16 seed=1,2,3  # a sweep (Hydra multirun); then: report <sweep folder>",
              "  run experiment=glash_u_shape               # a preset reproducing a seed study",
              "  run resume=outputs/<date>/<time>_<name>    # continue an interrupted run from last.ckpt",
              "", "Show the composed config: run --cfg job      Hydra's own options: run --hydra-help"]
    return "\n".join(lines)


def main() -> None:
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:
        print(help_text())  # Hydra's own help composes every group several times: seconds, not ms
        return
    import hydra

    sys.argv = [sys.argv[0], *_resume_args(args)]
    hydra.main(version_base="1.3", config_path=str(CONFIGS), config_name="run")(_task)()


def report_main() -> None:
    from gentwin.report import main as report

    sys.exit(report(sys.argv[1:]))


def sample_main() -> None:
    from gentwin.sample import main as sample

    sys.exit(sample(sys.argv[1:]))


def export_main() -> None:
    from gentwin.export import main as export

    sys.exit(export(sys.argv[1:]))
