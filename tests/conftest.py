"""Shared helpers: compose configs in-process, run the CLI in a subprocess, find shared data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TPC_DATA = Path(os.environ.get("GENTWIN_TPC_DATA", ROOT.parent / "shared" / "data" / "tpc"))

# Tests and CI run single-threaded: two processes that each take both cores run many times slower.
torch.set_num_threads(1)

# Overrides that make any run tiny: a few steps on a few hundred samples.
TINY = ["threads=1", "dataset.n=256", "dataset.batch_size=16", "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1", "trainer.log_every_n_steps=1"]


def compose(overrides: list[str] | None = None):
    """The composed run config for ``overrides`` (as ``run`` would see it, without the hydra node)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = hydra_compose(config_name="run", overrides=overrides or [], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} interpolations resolve as in a run
    with open_dict(cfg):
        del cfg.hydra
    return cfg


def fit(cfg, steps: int = 2, limit_val_batches: int = 0, root_dir=None):
    """Validates ``cfg``, builds it and trains ``steps`` steps; asserts the weights moved. ``(dm, model)``."""
    import lightning as L

    from gentwin.config import validate
    from gentwin.run import build

    validate(cfg)
    L.seed_everything(0, verbose=False)
    dm, model = build(cfg)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = L.Trainer(max_steps=steps, limit_val_batches=limit_val_batches, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", num_sanity_val_steps=0, default_root_dir=root_dir)
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == steps
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "no update"
    return dm, model


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs a console script (``run``, ``report``, ``sample``) in ``cwd`` as a user would."""
    env = dict(os.environ, CI="1", HYDRA_FULL_ERROR="0", OMP_NUM_THREADS="1")
    exe = Path(sys.executable).with_name(args[0])
    return subprocess.run([str(exe), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def run_dirs(root: Path) -> list[Path]:
    """Run folders (those holding a .hydra folder) below ``root``."""
    return sorted(p.parent for p in root.glob("**/.hydra"))


@pytest.fixture
def tpc_file() -> Path:
    path = TPC_DATA / "digits_v4plus_shortFixedPt.dat"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path
