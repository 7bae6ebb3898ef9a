"""Every invalid value of `run` is refused with one line (exit 2) before a run folder exists, and the
edge values Lightning accepts still pass."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from conftest import TINY, cli, compose
from gentwin.training.validation import validate

NO_GPU = not torch.cuda.is_available() and not torch.backends.mps.is_available()
NEEDS_NO_GPU = pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU")


@pytest.fixture
def files(tmp_path) -> Path:
    """Files that are not checkpoints: a plain pickle, a text file, a torch file of tensors alone."""
    (tmp_path / "pickle.ckpt").write_bytes(pickle.dumps(Path("x")))  # weights_only refuses any class
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "tensors.ckpt")
    return tmp_path


#: ``(arguments of run, what its one line must show: the key, the value, what is allowed)``
REFUSED = [
    (["trainer.max_steps=-5"], ["trainer.max_steps=-5", "-1 (no limit)"]),
    (["trainer.max_time=garbage"], ["trainer.max_time=garbage", "DD:HH:MM:SS"]),
    (["seed=abc"], ["seed=abc", "an integer in [0, 4294967295]"]),
    (["seed=-1"], ["seed=-1", "an integer in [0, 4294967295]"]),
    (["seed=1.5"], ["seed=1.5", "an integer"]),
    (["trainer=gpu"], ["trainer.accelerator=gpu", "no CUDA device is available", "use trainer=cpu"]),
    (["trainer.devices=0"], ["trainer.devices=0", "an integer >= 1"]),
    (["trainer.limit_train_batches=0"], ["trainer.limit_train_batches=0", "a fraction in (0, 1]"]),
    (["metric.mode=sideways"], ["metric.mode=sideways", "min or max"]),
    (["metric.monitor=nosuch"], ["metric.monitor=nosuch", "metric=toy", "multivariate/<key>"]),
    (["final_checkpoint=foo"], ["final_checkpoint=foo", "best or last"]),
    (["--config-dir", "nosuchdir"], ["--config-dir", "nosuchdir", "not found"]),
    (["ckpt_path=pickle.ckpt"], ["ckpt_path=pickle.ckpt", "not a gentwin checkpoint"]),
    (["ckpt_path=notes.txt"], ["ckpt_path=notes.txt", "not a gentwin checkpoint"]),
    (["ckpt_path=tensors.ckpt"], ["ckpt_path=tensors.ckpt", "not a gentwin checkpoint"]),
    (["ckpt_path=missing.ckpt"], ["ckpt_path=missing.ckpt", "no such checkpoint file"]),
]


@pytest.mark.parametrize("args, named", [
    pytest.param(args, named, id=" ".join(args),
                 marks=[NEEDS_NO_GPU] if "trainer=gpu" in args else [])
    for args, named in REFUSED])
def test_an_invalid_value_gets_one_line_before_any_folder_is_made(files, args, named):
    out = cli("run", *args, "threads=1", cwd=files)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    for text in named:
        assert text in lines[0]
    assert not (files / "outputs").exists()


@pytest.mark.parametrize("override", [
    "seed=0", "seed=4294967295", "trainer.max_steps=-1", "trainer.max_steps=1", "trainer.max_time=00:00:00:01",
    "trainer.max_time=12:00:00:00", "trainer.devices=-1", "trainer.devices=auto", "trainer.devices=[0,1]",
    "trainer.limit_train_batches=1", "trainer.limit_train_batches=0.5", "trainer.limit_train_batches=1.0",
    "metric.mode=max", "metric.monitor=chi2/x0", "metric.monitor=nll", "metric.monitor=finite_fraction",
    "final_checkpoint=last",
])
def test_the_values_lightning_accepts_stay_valid(override):
    validate(compose([override]))


def test_a_misspelt_monitor_under_a_valid_entry_gets_one_line_naming_the_values_and_leaves_no_folder(tmp_path):
    # Its entry (multivariate) exists: the keys under it are known at the first validation only.
    out = cli("run", *TINY, "metric.monitor=multivariate/energi", cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid value metric.monitor=multivariate/energi: ")
    assert "multivariate/energy, " in lines[0] and "multivariate/sliced_w1, " in lines[0]
    assert not (tmp_path / "outputs").exists()
