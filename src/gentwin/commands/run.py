"""``run``: train and evaluate a model (a Hydra app). Thin: the help, the resume's arguments, the run's
output captured in ``run.log``, and every error as one line with its exit code.

Heavy modules (torch, Lightning) are imported only once a run starts, so ``run --help`` is quick.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Importing resolvers registers the resolvers of the configs (folder names, launcher and sweeper
# presets), here and in the sweep's workers.
from gentwin.commands.common import fail, tee
from gentwin.errors import EXIT_INTERRUPTED, ConfigError, Diverged, GentwinError
from gentwin.training import launch, resolvers, resume  # noqa: F401
from gentwin.training.configs import (
    CONFIGS,
    config_groups,
    first_comment,
    specialisation_help,
    top_level_keys,
    wrapped,
)
from gentwin.training.hydra_errors import explain
from gentwin.training.run_folder import RunFolder


def _task(cfg) -> float | None:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode


    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    ckpt = out_dir / "checkpoints" / "last.ckpt"
    with tee(out_dir / "run.log"):
        return _run(cfg, hc, out_dir, ckpt, multirun)


def _run(cfg, hc, out_dir: Path, ckpt: Path, multirun: bool) -> float | None:
    try:
        from gentwin.training.fit import run, summary

        with launch.job_resources(cfg, hc, multirun):
            metrics = run(cfg, out_dir, choices=dict(hc.runtime.choices))
    except KeyboardInterrupt:
        kept = f"checkpoints in {ckpt.parent}; continue with: run resume={out_dir}" if ckpt.exists() \
            else "no checkpoint was written yet"
        fail(f"interrupted; {kept}", EXIT_INTERRUPTED)
    except Exception as e:
        if multirun:  # one failed job must not stop the sweep: Hydra records it, `report` lists it
            launch.write_error(out_dir, e)
            raise
        if not isinstance(e, GentwinError):
            raise
        if isinstance(e, Diverged):
            kept = f"the last good checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint had been written yet"
            fail(f"{e}; {kept}", e.exit_code)
        # Nothing was trained: remove what this run made (never a folder that held anything before).
        if not (out_dir / "checkpoints").exists():
            RunFolder.remove_created(out_dir)
        fail(str(e), e.exit_code)
    if metrics is None:  # a resume of a finished run: nothing trained, nothing rewritten
        print(f"{out_dir} had already finished (trainer.max_epochs reached); metrics.json is unchanged. "
              f"To train on, resume with a larger trainer.max_epochs.")
        return None
    resume.record(out_dir)  # a resumed run's record, now longer
    print(summary(metrics, cfg.metric.monitor, out_dir))
    return metrics.get(cfg.metric.monitor)


def help_text() -> str:
    lines = ["run: train and evaluate a deep generative surrogate (gentwin).", "",
             "Usage: run [group=option ...] [key=value ...]     run -m key=a,b,c ...  (a sweep)", "",
             "Top-level keys (key=value):",
             "  resume=<run folder>  continue an interrupted run from its checkpoints/last.ckpt, in its folder",
             *(line for k, v, d in top_level_keys() for line in wrapped(f"  {k}={v}  ", d)), "",
             "Config groups (group=option), each option with the first sentence of its file's description:"]
    for group, options in config_groups().items():
        lines.append(f"  {group}")
        width = max(len(o) for o in options)
        for o in options:
            lines += wrapped(f"    {o:{width}s}  ", first_comment(CONFIGS / group / f"{o}.yaml"))
    lines += ["", "Specialisations, applied by themselves and printed at a run's start (configs/specialise/",
              "<dataset>_<model>.yaml, or a file it includes; ~specialise: off):",
              *specialisation_help()]
    lines += ["", "Examples:",
              "  run                                        # the quick default on the CPU",
              "  run model=realnvp dataset=circles          # pick options of groups",
              "  run model.latent_dim=8 optimizer.lr=3e-4   # override values",
              "  run -m model.latent_dim=4,8,16 seed=1,2,3  # a sweep (Hydra multirun); then: report <sweep folder>",
              "  run experiment=toy_mlp_gan_u_shape               # a preset reproducing a report's study",
              "  run resume=outputs/<date>/<time>_<name>    # continue an interrupted run from last.ckpt",
              "", "Show the composed config: run --cfg job      Hydra's own options: run --hydra-help"]
    return "\n".join(lines)


def main() -> None:
    args = sys.argv[1:]
    if "--help" in args or "-h" in args:
        print(help_text())  # Hydra's own help composes every group several times: seconds, not ms
        return
    import hydra

    try:
        argv = resume.resume_args(args)
    except ConfigError as e:
        fail(str(e), e.exit_code)
    sys.argv = [sys.argv[0], *argv]
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing: we print one line
    try:
        hydra.main(version_base="1.3", config_path=str(CONFIGS), config_name="run")(_task)()
    except Exception as e:
        explained = None if full_error else explain(e, sys.argv[1:])
        if explained is None:
            raise
        fail(*explained)
