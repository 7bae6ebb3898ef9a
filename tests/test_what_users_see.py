"""What a user sees of a run: run.log, the summary, progress lines, budgets, HParams, figures."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, assert_rounding_close, cli, run_dirs

FAST = [*TINY, "dataset.n=400"]


def test_run_log_keeps_the_output_and_the_summary_leads_with_the_monitor(tmp_path):
    out = cli("run", *FAST, "trainer.max_epochs=4", "trainer.check_val_every_n_epoch=2", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "outputs")
    log = (run / "run.log").read_text()
    summary = [line for line in out.stdout.splitlines() if line.startswith("final ")]
    assert len(summary) == 1 and summary[0] in log and f"run folder:  {run}" in log
    assert summary[0].startswith("final multivariate/energy = ") and "(best checkpoint, epoch " in summary[0]
    assert "steps in" in summary[0]
    assert "(floor " in summary[0] and "chi2/x0" not in out.stdout  # a chi2 without a floor is not printed
    # Progress lines of the whole run, each with its ETA; the validated value with its epoch (2 and 4).
    progress = [line for line in out.stdout.splitlines() if line.startswith("training ")]
    assert len(progress) >= 5 and all(", ETA " in line or line.endswith(", done") for line in progress)
    assert progress == [line for line in log.splitlines() if line.startswith("training ")]
    shown = {line.split("(epoch ")[1].split(")")[0] for line in progress if "(epoch " in line}
    assert shown == {"2", "4"} and progress[-1].startswith("training 100%  epoch 4/4")
    hparams = OmegaConf.load(run / "tb" / "hparams.yaml")
    assert hparams["trainer.max_epochs"] == 4 and hparams["threads"] == 1 and hparams["choice/model"] == "wgan_gp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["best_epoch"] in (2, 4) and metrics["final_weights"] == "best"


@pytest.mark.parametrize("budget, check, progress", [
    ("trainer.max_steps=7", lambda m: m["steps"] == 7, (6 / 7, 6 / 7)),  # set before the 7th step
    # the time a step takes varies with the machine's load: only that the cosine moved along the budget
    ("trainer.max_time=00:00:00:02", lambda m: 1 < m["steps"] < 100_000, (1e-9, 1.0)),
])
def test_a_step_or_time_budget_ends_the_run_validated_and_checkpointed(tmp_path, budget, check, progress):
    out = cli("run", *FAST, "trainer.max_epochs=100000", "trainer.check_val_every_n_epoch=1000", budget,
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "outputs")
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert check(metrics) and math.isfinite(metrics["multivariate/energy"])
    last = torch.load(run / "checkpoints/last.ckpt", weights_only=True)
    assert last["global_step"] == metrics["steps"] and (run / "checkpoints/best.ckpt").exists()
    low, high = progress
    assert all(low - 1e-9 <= s["progress"] <= high + 1e-9 for s in last["lr_schedulers"])  # cosine followed it


def test_cosine_to_budget_follows_progress():
    from gentwin.schedules import CosineToBudget

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = CosineToBudget(opt, eta_min=0.5)
    lrs = []
    for progress in (0.0, 0.5, 1.0, 1.5):
        sched.progress = progress
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == pytest.approx([2.0, 1.25, 0.5, 0.5])


def test_property_histograms_draw_counts_as_one_bar_per_value_and_sample():
    from matplotlib.patches import Rectangle

    from gentwin.plots.images import property_histograms

    real = {"n_veins": np.array([1.0, 1.0, 2.0, 2.0]), "valid": np.ones(4)}
    fake = {"n_veins": np.array([3.0, 3.0, 3.0, 9.0]), "valid": np.array([1.0, 1.0, 1.0, 0.0])}
    fig = property_histograms(real, fake, units={"n_veins": "count"})
    ax = fig.axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]
    centres = sorted((round(p.get_x() + p.get_width() / 2, 2), round(p.get_height(), 1)) for p in bars)
    # real: 50 % at 1 and at 2 (left of each value); generated (the 3 valid): 100 % at 3 (right)
    assert centres == [(0.8, 50.0), (1.8, 50.0), (3.2, 100.0)]
    assert ax.get_xlabel() == "n_veins [count]" and "75.0 %" in fig._suptitle.get_text()


def test_leaf_images_go_out_as_geometry_that_reads_back(tmp_path):
    from shapely.geometry import shape

    from gentwin.domains.leaves.datamodule import LeafDataModule
    from gentwin.domains.leaves.io import read_geometry

    dm = LeafDataModule(n=12, size=64, batch_size=4)
    dm.setup()
    images = np.concatenate([dm.x_raw_val, np.random.default_rng(0).random((2, *dm.shape))])  # 2 are noise
    for suffix in (".geojson", ".wkt"):
        line = dm.write_geometry(images, tmp_path / f"leaves{suffix}")
        assert line.startswith(f"3 of 5 images post-processed into valid leaves, written to {tmp_path}")
        assert "the others failed on: " in line
        leaves = read_geometry(tmp_path / f"leaves{suffix}")
        assert len(leaves) == 3 and all(leaf.outline.is_valid and leaf.outline.area > 1 for leaf in leaves)
    features = json.loads((tmp_path / "leaves.geojson").read_text())["features"]
    assert all(shape(f["geometry"]).is_valid for f in features)
    again = LeafDataModule(geometry=str(tmp_path / "leaves.geojson"), halve=False, size=64, batch_size=1,
                           val_fraction=0.34)
    again.setup()
    assert again.n_train + len(again.x_val) == 3


def test_a_leaf_run_writes_geojson_and_sample_writes_the_format_asked_for(tmp_path):
    out = cli("run", "threads=1", "dataset=leaves", "model=conv_vae", "dataset.n=12", "dataset.size=32",
              "dataset.batch_size=4", "trainer.max_epochs=1", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "outputs")
    assert (run / "samples.geojson").exists() and "images post-processed into valid leaves" in out.stdout
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0}).Reload()
    steps = json.loads((run / "metrics.json").read_text())["metrics"]["steps"]
    for tag in ("train/samples_fixed_noise", "train/reconstructions"):  # at step 0 and of the trained model
        assert [e.step for e in acc.Images(tag)] == [0, steps], tag
    ckpt = str(run / "checkpoints/best.ckpt")
    got = cli("sample", ckpt, "n=6", "out=six.geojson", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert "of 6 images post-processed into valid leaves, written to six.geojson" in got.stdout
    assert json.loads((tmp_path / "six.geojson").read_text())["type"] == "FeatureCollection"
    bad = cli("sample", ckpt, "n=6", "out=six.csv", cwd=tmp_path)
    assert bad.returncode == 2 and "written as .npz, .geojson, .wkt" in bad.stderr
    exported = cli("export-model", ckpt, "--format", "onnx", cwd=tmp_path)  # quiet: no torchvision lines
    assert exported.returncode == 0 and exported.stderr == "", exported.stderr[-2000:]


def test_metric_smooth_chooses_the_best_checkpoint_by_the_mean_of_the_last_validations(tmp_path):
    out = cli("run", *FAST, "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=1", "metric.smooth=2",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "outputs")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0}).Reload()
    raw = [e.value for e in acc.Scalars("val/multivariate/energy")]
    smoothed = [e.value for e in acc.Scalars("val/multivariate/energy_smoothed")]
    want = [raw[0]] + [(a + b) / 2 for a, b in zip(raw, raw[1:], strict=False)]
    # TensorBoard stores float32: the mean of the stored values is within an eps of the stored mean (half an eps
    # for each stored value, half for the stored mean).
    assert len(raw) == 3
    assert_rounding_close(torch.tensor(smoothed), torch.tensor(want, dtype=torch.float64), k=2, scale=max(raw))
    best = json.loads((run / "metrics.json").read_text())["metrics"]["best_epoch"]
    assert best == 1 + min(range(3), key=smoothed.__getitem__)
