"""The `run` command as a user meets it: folders, TensorBoard, resume, sweeps and bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from conftest import TINY, cli, run_dirs

FAST = [*TINY, "dataset.n=400"]


def test_help_lists_groups_and_options(tmp_path):
    out = cli("run", "--help", cwd=tmp_path)
    assert out.returncode == 0
    for line in ("  model\n", "  dataset\n", "  schedule/lr\n", "  trainer\n", "    ddp "):
        assert line in out.stdout
    # one line per option, from the first comment of its file; the top-level keys with their defaults
    # (the column is as wide as the group's longest option name)
    assert re.search(r"\n    wgan_gp +WGAN-GP \(Gulrajani et al\. 2017;", out.stdout)
    assert re.search(r"\n    gaussian2d +Toy distribution 'gaussian2d'", out.stdout)
    for key in ("resume=<run folder>  continue", "seed=1  Seed of the training", "threads=null  Intra-op CPU threads",
                "final_checkpoint=best  Weights used", "name=<model>_<dataset>  Name of the run folder"):
        assert f"  {key}" in out.stdout, key
    # every specialisation, with the models that use it and what it sets
    assert "  tpc + cramer_gan, gan, lsgan, wgan_gp: model.critic_steps=8, model.generator.head=TPCOutputActivation, " \
           "model.critic=TPCCritic, dataset.batch_size=32 (configs/specialise/tpc_wgan_gp.yaml)\n" in out.stdout
    assert "  any dataset + dcgan: dataset.transform=Affine (configs/model/dcgan.yaml)" in out.stdout


def test_help_shows_long_descriptions_whole(tmp_path):
    """A description longer than a line is wrapped, not cut: tpc_baseline's first sentence (about 500
    characters over seven comment lines) appears whole, ending at its full stop, and no line is cut with '…'."""
    out = cli("run", "--help", cwd=tmp_path)
    assert out.returncode == 0 and "…" not in out.stdout
    text = " ".join(out.stdout.split())  # the wrapped lines joined back
    assert ("tpc_baseline The TPC baseline of Maevskiy et al. (2021) as Malchenko et al. 2022 (TPC fast simulation) "
            "§4.3.3 trains it: WGAN-GP, latent 32, ") in text
    assert ("4000 epochs; its chi2 after 4000 epochs is 440 +- 27 (Malchenko et al. 2022 Table 1, 20,000 MPD "
            "events). tpc_cpu The TPC baseline's") in text
    # the wrapped lines stay within the width, continuation lines under the description's start
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("    tpc_baseline "))
    assert lines[start + 1].startswith(" " * len("    tpc_baseline            ") + "fast simulation)")
    assert max(len(line) for line in lines[start:start + 7]) <= 100


@pytest.mark.parametrize("override, message", [
    ("model.latent_dim=-3", "error: invalid value model.latent_dim=-3: must be an integer >= 1"),
    ("model.critic_steps=0", "error: invalid value model.critic_steps=0: must be an integer >= 1"),
    ("optimizer.lr=-1e-3", "error: invalid value optimizer.lr=-0.001: must be a number > 0"),
    ("dataset.batch_size=100000", "error: invalid value dataset.batch_size=100000"),
])
def test_invalid_value_gives_one_line_exit_2_and_no_folder(tmp_path, override, message):
    out = cli("run", override, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), out.stderr
    assert not (tmp_path / "outputs").exists()


def test_unknown_option_lists_the_valid_ones(tmp_path):
    out = cli("run", "model=wgan", cwd=tmp_path)
    assert out.returncode != 0
    assert "Could not find 'model/wgan'" in out.stderr and "wgan_gp" in out.stderr and "realnvp" in out.stderr
    assert not (tmp_path / "outputs").exists()


def test_run_writes_the_run_folder_and_tensorboard(tmp_path):
    out = cli("run", *FAST, "model.critic_steps=2", "trainer.max_epochs=2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert f"run folder:  {run}" in out.stdout and f"tensorboard --logdir {run / 'tb'}" in out.stdout
    for name in (".hydra/config.yaml", "checkpoints/last.ckpt", "checkpoints/best.ckpt", "metrics.json",
                 "samples.npz"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    for key in ("wall_time_s", "steps", "samples_per_second", "multivariate/energy", "moments/x0_mean_err",
                "chi2/x0", "w1/x1"):
        assert np.isfinite(metrics[key]), key
    assert metrics["steps"] == 2 * (300 // 32)  # 2 epochs of 300 training samples, 2 x 16 per step
    samples = np.load(run / "samples.npz")["x"]
    assert samples.shape == (100, 2)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    scalars, images = set(acc.Tags()["scalars"]), set(acc.Tags()["images"])
    for tag in ("train/loss_d", "train/loss_g", "train/d_real", "train/d_fake", "train/gp",
                "train/lr_generator", "train/lr_critic", "val/multivariate/energy", "val/moments/x0_mean_err",
                "final/multivariate/energy"):
        assert tag in scalars, tag
    assert {"val/samples", "final/samples"} <= images
    content = b"".join(p.read_bytes() for p in (run / "tb").glob("events*"))
    assert b"_hparams_/session_start_info" in content and b"model.latent_dim" in content


def test_resume_continues_from_the_saved_step(tmp_path):
    first = cli("run", *FAST, "model=realnvp", "trainer.max_epochs=2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (run,) = run_dirs(tmp_path / "outputs")
    assert np.isfinite(json.loads((run / "metrics.json").read_text())["metrics"]["nll"])  # flows report it
    saved = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert saved["global_step"] == 2 * (300 // 16)
    again = cli("run", f"resume={run}", "trainer.max_epochs=4", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert run_dirs(tmp_path / "outputs") == [run]  # same folder
    assert json.loads((run / "metrics.json").read_text())["metrics"]["steps"] == 4 * (300 // 16)
    assert torch.load(run / "checkpoints/last.ckpt", weights_only=False)["epoch"] == 3


def test_resume_of_a_folder_without_checkpoint_is_refused(tmp_path):
    out = cli("run", f"resume={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert out.returncode == 2 and "cannot resume" in out.stderr


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    # The learning rate grows 1e6-fold each epoch: the first epoch is sane and checkpointed.
    out = cli("run", *FAST, "model=vae", "optimizer=sgd", "optimizer.lr=1e-3", "schedule/lr=exp_decay",
              "schedule.lr.gamma=1e8", "trainer.max_epochs=20", cwd=tmp_path)
    assert out.returncode == 4, out.stderr
    assert "error: loss became nan" in out.stderr or "error: loss became inf" in out.stderr
    assert out.stderr.count("error:") == 1
    (run,) = run_dirs(tmp_path / "outputs")
    last = torch.load(run / "checkpoints/last.ckpt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())
    assert str(run / "checkpoints/last.ckpt") in out.stderr


def test_multirun_writes_one_folder_per_job(tmp_path):
    out = cli("run", "-m", *FAST, "model=nice", "seed=1,2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = run_dirs(tmp_path / "outputs" / "multirun")
    assert len(runs) == 2 and all((r / "metrics.json").exists() for r in runs)
    assert {r.name.split("_", 1)[0] for r in runs} == {"0", "1"}
