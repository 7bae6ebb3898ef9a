"""The property metrics beside their floor: the same distance between two real samples."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest

from gentwin.domains.digits.datamodule import DigitsDataModule
from gentwin.domains.leaves.datamodule import LeafDataModule
from gentwin.metrics.floors import split_halves
from gentwin.metrics.properties import property_floor, property_metric, property_scores, property_table
from gentwin.report import build_report, markdown
from gentwin.training.evaluate import run_metrics

KEYS = ("a", "b", "c")


def _props(rng, n, shift=0.0, valid=None):
    out = {k: rng.normal(shift, 1.0 + i, n) for i, k in enumerate(KEYS)}
    out["valid"] = np.ones(n) if valid is None else valid
    return out


def test_every_property_and_mean_has_its_floor():
    rng = np.random.default_rng(0)
    real, second, fake = _props(rng, 400), _props(rng, 400), _props(rng, 400, shift=1.0)
    scores = property_scores(real, fake, floor_reference=second)
    for k in [f"{p}_{s}" for p in KEYS for s in ("w1", "ks")] + ["mean_w1", "mean_ks", "valid_rate"]:
        assert f"{k}_floor" in scores, k
    # With a second real sample: real against it; without: two halves of real (floors.split_halves).
    exact = property_metric(real, second)
    assert scores["a_w1_floor"] == exact["a_w1"] and scores["c_ks_floor"] == exact["c_ks"]
    assert scores["mean_w1_floor"] == pytest.approx(np.mean([exact[f"{p}_w1"] for p in KEYS]), rel=1e-12)
    ia, ib = split_halves(400, seed=0)
    halves = property_metric({k: v[ia] for k, v in real.items()}, {k: v[ib] for k, v in real.items()})
    assert property_scores(real, fake)["b_w1_floor"] == halves["b_w1"]
    assert property_floor(real)["mean_ks"] == pytest.approx(np.mean([halves[f"{p}_ks"] for p in KEYS]), rel=1e-12)
    # A generator one std off is far above the floor; the floor itself is the sampling noise of 400 values.
    assert scores["mean_w1"] > 5 * scores["mean_w1_floor"] and scores["mean_w1_floor"] < 0.2
    assert scores["valid_rate_floor"] == 1.0


def test_run_metrics_passes_the_second_sample_and_names_the_floor():
    rng = np.random.default_rng(1)
    real, second, fake = _props(rng, 100), _props(rng, 100), _props(rng, 100)
    entries = {"prop": partial(property_scores)}
    out = run_metrics(entries, real, fake, None, second)
    assert out["prop/mean_w1_floor"] == property_floor(real, second)["mean_w1"]
    assert run_metrics(entries, real, fake, None)["prop/mean_w1_floor"] == property_floor(real)["mean_w1"]


def test_real_held_out_leaves_scored_as_generated_land_at_their_floor():
    dm = LeafDataModule(n=80, val_fraction=0.5, batch_size=8, n_eval=None, grid_every_n_steps=None)
    dm.setup()
    real, second = dm.real_properties(), dm.floor_properties()
    assert len(second["area"]) == len(real["area"]) == 40 and second["valid"].mean() == 1.0
    assert dm.floor_properties() is second  # simulated once
    # Independent real samples of the held-out size, scored as if generated: the spread of the floor.
    values = [property_scores(real, dm.properties(dm.second_sample(40, np.random.default_rng([0, 10 + k]))),
                              floor_reference=second) for k in range(3)]
    w1 = np.array([v["mean_w1"] for v in values])
    floor = values[0]["mean_w1_floor"]
    assert abs(floor - w1.mean()) <= 3 * w1.std(ddof=1)
    assert all(v["valid_rate"] == 1.0 for v in values)
    # Leaves 15 % shorter, without holes, are far above it.
    other = LeafDataModule(n=80, grid_every_n_steps=None, simulator={"length": (6.4, 0.8), "holes": 0.0})
    fake = other.properties(other.second_sample(40, np.random.default_rng(5)))
    assert property_scores(real, fake, floor_reference=second)["mean_w1"] > 2 * floor


def test_summary_and_report_print_value_and_floor(tmp_path):
    dm = DigitsDataModule(n=200, val_fraction=0.3, batch_size=8, grid_every_n_steps=None)
    dm.setup()
    assert dm.floor_properties() is None  # no simulator: two halves of the held-out digits
    real = dm.real_properties()
    rng = np.random.default_rng(0)
    fake = dm.properties(np.clip(dm.x_raw_val + rng.normal(0, 0.3, dm.x_raw_val.shape), 0, 1))
    text = dm.summary(real, fake)
    scores = property_scores(real, fake)
    mean_line = next(line for line in text.splitlines() if line.startswith("mean "))
    assert mean_line.split()[1:] == [f"{scores[k]:.3f}" for k in ("mean_w1", "mean_w1_floor", "mean_ks",
                                                                    "mean_ks_floor")]
    assert "floor: the same distance between the held-out data and two halves of the held-out data" in text
    assert property_table(real, fake, floor_reference=real).count(" 0.000") >= 2 * (len(real) - 1)

    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("- dataset=digits\n")
    (run / ".hydra" / "config.yaml").write_text("seed: 1\nmetric:\n  monitor: prop/mean_w1\n  mode: min\n")
    (run / "metrics.json").write_text(json.dumps({"monitor": "val/prop/mean_w1", "metrics": {
        "prop/mean_w1": 0.5, "prop/mean_w1_floor": 0.125}}))
    md = markdown(build_report(run))
    assert "| mean ± std | runs | floor (mean) |" in md and "| 0.125 |" in md


def test_the_leaf_preset_trains_on_a_users_geojson_and_reports_the_halves_floor(tmp_path):
    from conftest import cli
    from gentwin.domains.leaves.io import to_geojson
    from gentwin.domains.leaves.simulator import simulate_leaves

    path = tmp_path / "my_leaves.geojson"
    path.write_text(json.dumps(to_geojson(simulate_leaves(12, np.random.default_rng(3)))))
    r = cli("run", "experiment=leaf_vae", f"dataset.geometry={path}", "threads=1", "dataset.batch_size=4",
            "trainer.max_time=null", "trainer.max_epochs=1", "trainer.check_val_every_n_epoch=1",
            "dataset.grid_every_n_steps=null", "hydra.run.dir=run", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["metrics"]
    assert metrics["prop/valid_rate_floor"] == 1.0 and metrics["prop/mean_w1_floor"] > 0  # 24 half-leaves: 18 + 6
    assert "floor: the same distance between the held-out data and two halves of the held-out data" in r.stdout
    assert (tmp_path / "run" / "samples.geojson").exists()
