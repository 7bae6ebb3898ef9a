"""`report`: exact seed statistics on a synthetic sweep; a real sweep with a failing job; HParams."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import TINY, assert_rounding_close, cli, run_dirs
from gentwin.commands.report import main
from gentwin.report import build_report, markdown, mean_std

# Malchenko et al. 2022 (TPC fast simulation) Table 1: WGAN-GP chi2 after 4000 epochs, TEST 1-3, per latent dimension.
TABLE1 = {32: (459.5, 408.9, 452.6), 24: (440.9, 448.6, 489.1), 16: (388.1, 460.7, 464.2),
          12: (481.1, 418.5, 444.0), 8: (423.2, 481.0, 446.4), 4: (582.8, 501.3, 741.5)}
# Its printed means and standard deviations (truncated to 2 decimals by the report's authors).
TABLE1_PRINTED = {32: (440.33, 27.43), 24: (459.53, 25.89), 16: (437.66, 42.96), 12: (447.86, 31.47),
                  8: (450.2, 29.08), 4: (608.53, 122.15)}


def fake_job(root, num, overrides, seed, metrics=None, error=None, curve=None):
    """A job folder as `run -m` writes it (curve: val/chi2 per epoch into tb/ events)."""
    job = root / f"{num}_{','.join(overrides)}"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job / ".hydra" / "config.yaml").write_text(f"seed: {seed}\nmetric:\n  monitor: chi2\n  mode: min\n")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"monitor": "val/chi2", "best_checkpoint": None,
                                                      "metrics": metrics}))
    if error is not None:
        (job / "error.txt").write_text(error + "\n\nTraceback ...\n")
    if curve is not None:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(job / "tb")) as w:
            for epoch, value in enumerate(curve):
                w.add_scalar("val/chi2", value, global_step=10 * epoch + 9)
                w.add_scalar("epoch", epoch, global_step=10 * epoch + 9)
    return job


@pytest.fixture
def table1_sweep(tmp_path):
    root = tmp_path / "sweep"
    num = 0
    for dim, values in TABLE1.items():
        for seed, value in enumerate(values, start=1):
            curve = [2 * value, value] if dim in (32, 4) else None
            fake_job(root, num, [f"model.latent_dim={dim}", f"seed={seed}", "dataset=tpc"], seed,
                     {"chi2": value, "samples_per_second": 1000.0 * seed, "wall_time_s": 1.5}, curve=curve)
            num += 1
    fake_job(root, num, ["model.latent_dim=2", "seed=1", "dataset=tpc"], 1,
             error="ConfigError: invalid value model.latent_dim=2: demo")
    fake_job(root, num + 1, ["model.latent_dim=2", "seed=2", "dataset=tpc"], 2)  # no record: unfinished
    return root


def test_sample_std_matches_malchenko_2022_table_1():
    for dim, values in TABLE1.items():
        mean, std = mean_std(values)
        printed_mean, printed_std = TABLE1_PRINTED[dim]
        assert abs(mean - printed_mean) < 0.01 and abs(std - printed_std) < 0.01, dim  # ddof=1, truncated
        assert abs(np.std(values) - printed_std) > 4  # ddof=0 would not match
    assert math.isnan(mean_std([1.0])[1])


def test_report_of_a_synthetic_sweep_gives_exact_means_and_stds(table1_sweep, capsys):
    rep = build_report(table1_sweep)
    assert rep.swept == ["model.latent_dim"] and rep.common == {"dataset": "tpc"}
    assert rep.metrics == ["chi2", "samples_per_second", "wall_time_s"] and rep.monitor == "chi2"
    assert [dict(r.key)["model.latent_dim"] for r in rep.rows] == ["32", "24", "16", "12", "8", "4", "2"]
    for row in rep.rows[:6]:
        values = TABLE1[int(row.key[0][1])]
        assert row.values("chi2") == dict(zip((1, 2, 3), values, strict=True))
        assert mean_std(row.values("chi2").values()) == (np.mean(values), np.std(values, ddof=1))

    assert main([str(table1_sweep), "--metrics", "val/chi2"]) == 0
    out = capsys.readouterr().out
    assert "| 32 | 459.5 | 408.9 | 452.6 | 440.33 ± 27.44 | 3/3 |" in out
    assert "| 4 | 582.8 | 501.3 | 741.5 | 608.53 ± 122.15 | 3/3 |" in out
    assert "| 2 |  |  |  | – ± – | 0/2 |" in out
    assert "## chi2 (monitor, min)" in out and "samples_per_second" not in out
    # Failed and unfinished jobs are listed, with the error.
    assert "| 18 | failed | model.latent_dim=2 seed=1 | ConfigError: invalid value" in out
    assert "| 19 | unfinished | model.latent_dim=2 seed=2 |  |" in out

    rows = list(csv.DictReader((table1_sweep / "report.csv").open()))
    first = rows[0]
    assert first["model.latent_dim"] == "32" and first["metric"] == "chi2" and first["n"] == "3"
    assert float(first["mean"]) == np.mean(TABLE1[32]) and float(first["std"]) == np.std(TABLE1[32], ddof=1)
    assert [float(first[f"seed={s}"]) for s in (1, 2, 3)] == list(TABLE1[32])
    assert (table1_sweep / "report.md").read_text() == markdown(build_report(table1_sweep, ["chi2"]))
    assert (table1_sweep / "chi2_vs_model.latent_dim.png").stat().st_size > 1000
    assert (table1_sweep / "chi2_curves.png").stat().st_size > 1000


def test_several_swept_keys_give_one_row_per_combination(tmp_path):
    root = tmp_path / "sweep"
    num = 0
    for lr in ("1e-4", "1e-3"):
        for gp in ("1", "10"):
            for seed in (1, 2):
                fake_job(root, num, [f"optimizer.lr={lr}", f"model.loss.gp_weight={gp}", f"seed={seed}"], seed,
                         {"chi2": float(num)})
                num += 1
    rep = build_report(root, ["chi2"])
    assert rep.swept == ["optimizer.lr", "model.loss.gp_weight"] and len(rep.rows) == 4
    assert [mean_std(r.values("chi2").values())[0] for r in rep.rows] == [0.5, 2.5, 4.5, 6.5]
    assert main([str(root), "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "chi2_vs_optimizer.lr.png").exists()


def test_no_runs_or_unknown_metric_is_one_line_and_exit_2(tmp_path, table1_sweep, capsys):
    assert main([str(tmp_path / "empty_or_missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "no such folder" in err[0]
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no runs here" in err[0]
    assert main([str(table1_sweep), "--metrics", "nope"]) == 2
    assert "no job recorded metric(s) ['nope']" in capsys.readouterr().err


def test_multirun_with_a_failing_job_gives_a_two_row_table_and_hparams(tmp_path):
    # 2 latent sizes x seeds 1, 2, plus a deliberately invalid latent size (two failing jobs).
    out = cli("run", "-m", *TINY, "model=nice", "model.flow.transforms=2,1,-1", "seed=1,2", cwd=tmp_path)
    assert out.returncode != 0  # Hydra runs every job of the batch, then reports the failure
    runs = run_dirs(tmp_path / "outputs" / "multirun")
    assert len(runs) == 6
    done = [r for r in runs if (r / "metrics.json").exists()]
    failed = [r for r in runs if (r / "error.txt").exists()]
    assert len(done) == 4 and len(failed) == 2
    assert all("model.flow.transforms=-1" in r.name for r in failed)
    assert (failed[0] / "error.txt").read_text().startswith("ConfigError: invalid value model.flow.transforms=-1")

    sweep = runs[0].parent
    rep = cli("report", str(sweep), cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    table = [line for line in rep.stdout.splitlines() if line.startswith("| ")]
    head = "| model.flow.transforms | seed 1 | seed 2 | mean ± std | runs |"
    assert head in table
    rows = [line for line in table if line.startswith(("| 2 |", "| 1 |"))]
    assert len(rows) == 3 * 2  # 2 finished rows for each of 3 metric tables
    assert "| -1 |  |  | – ± – | 0/2 |" in table
    assert "| 4 | failed | model.flow.transforms=-1 seed=1 | ConfigError: invalid value" in rep.stdout
    assert "| 5 | failed | model.flow.transforms=-1 seed=2 | ConfigError: invalid value" in rep.stdout
    for name in ("report.md", "report.csv", "multivariate_energy_vs_model.flow.transforms.png",
                 "multivariate_energy_curves.png"):
        assert (sweep / name).exists(), name
    for r in done:
        check_hparams_session(r)


def check_hparams_session(run):
    """TensorBoard's HParams tab: the run's session holds its hyperparameters and real final metrics."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(run / "tb"), size_guidance={"scalars": 0, "images": 1, "tensors": 0}).Reload()
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    from omegaconf import OmegaConf

    overrides = dict(o.split("=", 1) for o in OmegaConf.load(run / ".hydra/overrides.yaml"))
    assert hp["model.flow.transforms"].number_value == float(overrides["model.flow.transforms"])
    assert hp["seed"].number_value == float(overrides["seed"])
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    tags = {m.name.tag for m in experiment.metric_infos}
    assert "final/multivariate/energy" in tags
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    (event,) = acc.Scalars("final/multivariate/energy")
    # TensorBoard stores float32: one rounding of the float64 value, half an eps.
    assert_rounding_close(torch.tensor(event.value), torch.tensor(metrics["multivariate/energy"], dtype=torch.float64),
                          k=1)
    assert event.value != -1
    assert "hp_metric" not in acc.Tags()["scalars"]


@pytest.mark.slow
def test_tpc_latent_sweep_at_smoke_scale(tmp_path):
    """The sweep file of Malchenko et al.'s Table 1, its grid narrowed on the command line, then `report`."""
    from conftest import cli

    sweep = tmp_path / "t1"
    out = cli("run", "-m", "experiment=tpc_baseline", "sweep=tpc_latent", "model.latent_dim=8,4", "seed=1,2",
              "dataset.n=600", "trainer.max_epochs=1", "threads=1", f"hydra.sweep.dir={sweep}",
              "metric.figures_every=0", "~metric.entries.fpd", "~metric.entries.classifier", cwd=tmp_path,
              timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(next(sweep.glob("0_*")) / "tb")).Reload()
    assert "final/chi2" in tb.Tags()["scalars"] and tb.Tags()["images"] == []  # figures_every=0: none at all
    out = cli("report", str(sweep), "--metrics", "chi2,samples_per_second", cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| model.latent_dim | seed 1 | seed 2 | mean ± std | runs |" in out.stdout
    assert "## chi2 (monitor, min)" in out.stdout
    assert sum(line.startswith(("| 8 |", "| 4 |")) for line in out.stdout.splitlines()) == 2 * 2


def single_run(root, name, overrides, seed, value):
    """A single run's folder as `run` writes it: no job number in its name, hydra.job.num '???'."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (run / ".hydra" / "config.yaml").write_text(f"seed: {seed}\nmetric:\n  monitor: chi2\n  mode: min\n")
    (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  job:\n    num: ???\n")
    (run / "metrics.json").write_text(json.dumps({"monitor": "val/chi2", "metrics": {"chi2": value}}))
    return run


def test_report_on_a_run_several_runs_and_a_date_folder(tmp_path, capsys):
    day = tmp_path / "outputs" / "2026-12-02"
    a = single_run(day, "10-00-00-000001_wgan_gp_tpc", ["model.latent_dim=8", "seed=1"], 1, 400.0)
    b = single_run(day, "10-05-00-000001_wgan_gp_tpc", ["model.latent_dim=8", "seed=2"], 2, 500.0)
    single_run(day, "11-00-00-000001_wgan_gp_tpc", ["model.latent_dim=16"], 1, 300.0)
    assert main([str(a), "--no-plots"]) == 0
    assert "400" in capsys.readouterr().out and (a / "report.md").exists()
    rep = build_report([a, b])
    assert [len(r.jobs) for r in rep.rows] == [2] and rep.root == day.resolve()
    assert mean_std(rep.rows[0].values("chi2").values()) == pytest.approx((450.0, 70.7107), rel=1e-4)
    rep = build_report(day)  # the date folder: runs that differ in their overrides are grouped as a sweep
    assert rep.swept == ["model.latent_dim"] and [len(r.jobs) for r in rep.rows] == [2, 1]
    assert main([str(day)]) == 0
    assert (day / "chi2_vs_model.latent_dim.png").exists()


def test_report_prints_the_published_values_of_the_study_beside_ours(tmp_path):
    from gentwin.training.configs import CONFIGS

    block = OmegaConf.load(CONFIGS / "sweep" / "tpc_latent.yaml")["published"]
    root = tmp_path / "sweep"
    for num, (dim, seed, value) in enumerate([(32, 1, 450.0), (32, 2, 430.0), (4, 1, 700.0)]):
        job = fake_job(root, num, [f"model.latent_dim={dim}", f"seed={seed}"], seed, {"chi2": value})
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        config.published = block
        OmegaConf.save(config, job / ".hydra" / "config.yaml")
    text = markdown(build_report(root))
    assert "| mean ± std | runs | published |" in text
    assert "| 32 | 450 | 430 | 440.00 ± 14.14 | 2/2 | 440.33 ± 27.43 |" in text
    assert "| 4 | 700 |  | 700.00 ± – | 1/1 | 608.53 ± 122.15 |" in text
    assert "published: Malchenko et al. 2022 (TPC fast simulation) Table 1" in text


def test_published_values_of_a_study_over_two_keys(tmp_path):
    from gentwin.training.configs import CONFIGS

    block = OmegaConf.load(CONFIGS / "sweep" / "tpc_realnvp_layers.yaml")["published"]
    root = tmp_path / "sweep"
    for num, (layers, batch) in enumerate([(12, 256), (2, 128)]):
        job = fake_job(root, num, [f"model.flow.transforms={layers}", f"dataset.batch_size={batch}", "seed=1"], 1,
                       {"chi2": 7000.0 + num})
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        config.published = block
        OmegaConf.save(config, job / ".hydra" / "config.yaml")
    text = markdown(build_report(root))
    # Table 8's 12 layers, batch 256: 7123.22, 7348.13, 6969.004 -> 7146.78 +- 190.66 (ddof 1)
    assert "| 12 | 256 | 7000 | 7000.0 ± – | 1/1 | 7146.8 ± 190.7 |" in text
    assert "| 2 | 128 | 7001 | 7001.0 ± – | 1/1 | 22571 ± 2209 |" in text


def mixed_run(day, name, model, dataset, monitor, metrics, curve=None):
    """A single run's folder as `run` writes it: its group choices, its own monitor, curves in tb/."""
    run = day / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(f"- model={model}\n- dataset={dataset}\n")
    (run / ".hydra" / "config.yaml").write_text(f"seed: 1\nmetric:\n  monitor: {monitor}\n  mode: min\n")
    (run / ".hydra" / "hydra.yaml").write_text(f"hydra:\n  job:\n    num: ???\n  runtime:\n    choices:\n"
                                               f"      model: {model}\n      dataset: {dataset}\n")
    warnings = ["prop/mean_w1 is nan: ..."] if math.isnan(metrics[monitor]) else []
    (run / "metrics.json").write_text(json.dumps({"monitor": f"val/{monitor}", "metrics": metrics,
                                                  "warnings": warnings}))
    if curve:
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(run / "tb")) as w:
            for epoch, (value, floor) in enumerate(curve):
                w.add_scalar(f"val/{monitor}", value, global_step=10 * epoch + 9)
                w.add_scalar(f"val/{monitor}_floor", floor, global_step=10 * epoch + 9)
                w.add_scalar("epoch", epoch, global_step=10 * epoch + 9)
    return run


def test_report_over_a_tpc_a_leaf_and_a_toy_run_shows_each_ones_own_metric(tmp_path, capsys):
    day = tmp_path / "outputs" / "2026-12-03"
    mixed_run(day, "09-00-00-000001_wgan_gp_tpc", "wgan_gp", "tpc", "chi2", {"chi2": 1234.5, "best_epoch": 4})
    mixed_run(day, "09-10-00-000001_beta_vae_leaves", "beta_vae", "leaves", "prop/mean_w1",
              {"prop/mean_w1": math.nan, "prop/valid_rate": 0.0, "best_epoch": 4})
    mixed_run(day, "09-20-00-000001_wgan_gp_moons", "wgan_gp", "moons", "multivariate/energy",
              {"multivariate/energy": 0.004, "multivariate/energy_floor": 0.002, "multivariate/energy_floor_std": 0.001,
               "best_epoch": 3}, curve=[(0.05, 0.002), (0.01, 0.002), (0.004, 0.002), (0.006, 0.002)])
    assert main([str(day)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# Report: {day}\n\n3 runs: 3 finished")
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in out.splitlines() if line.startswith("| 09-")}
    assert rows["09-00-00-000001_wgan_gp_tpc"][1:6] == ["wgan_gp", "tpc", "chi2", "1234.5", "–"]
    assert rows["09-10-00-000001_beta_vae_leaves"][1:5] == ["beta_vae", "leaves", "prop/mean_w1", "–"]
    assert "prop/mean_w1 is nan" in rows["09-10-00-000001_beta_vae_leaves"][-1]
    assert rows["09-20-00-000001_wgan_gp_moons"][1:8] == ["wgan_gp", "moons", "multivariate/energy", "0.004",
                                                          "0.002 ± 0.001", "2.00", "3"]
    rep = build_report(day)
    assert rep.metrics == ["chi2", "prop/mean_w1", "multivariate/energy"]  # each run's own, none blank
    assert (day / "multivariate_energy_curves.png").exists()


def test_speeds_time_each_batch_and_skip_one_that_would_take_too_long():
    import time

    from gentwin.training.timing import speeds

    class Slow:  # at least 1e-4 s per sample: batch 10,000 would take >= 1 s
        cond_dim, device, calls = 0, "cpu", []

        def sample(self, n, c=None):
            self.calls.append(n)
            time.sleep(1e-4 * n)

    m = Slow()
    out = speeds(m, batches=(1, 100, 10_000), budget_s=0.5, min_s=0.0)
    assert set(out) == {"speed/samples_per_s_batch1", "speed/samples_per_s_batch100"}
    assert 10_000 not in m.calls and m.calls[:2] == [1, 1]  # a warm-up call, then one timed call each
    assert 0 < out["speed/samples_per_s_batch100"] <= 1e4


def test_tradeoff_view_puts_each_run_beside_its_floors_and_speeds(tmp_path, capsys):
    base = {"chi2": 2000.0, "chi2_floor": 1000.0, "classifier/auc": 0.6, "sparsity/n_hits_chi2": 300.0,
            "sparsity/n_hits_chi2_floor": 200.0, "speed/samples_per_s_batch1": 90.0,
            "speed/samples_per_s_batch100": 5000.0, "speed/samples_per_s_batch10000": 8000.0, "wall_time_s": 60.0}
    gan = fake_job(tmp_path / "runs", 0, ["experiment=tpc_cpu"], 1, base)
    fm = fake_job(tmp_path / "runs", 1, ["experiment=tpc_flow_matching"], 1,
                  {**base, "chi2": 1500.0, "speed/samples_per_s_batch10000": 700.0})
    (fm / ".hydra" / "config.yaml").write_text("seed: 1\nmodel:\n  steps: 20\n  solver: midpoint\n")
    assert main([str(gan), str(fm), "view=tradeoff", f"out={tmp_path / 'rep'}"]) == 0
    text = (tmp_path / "rep" / "tradeoff.md").read_text()
    assert text in capsys.readouterr().out
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| 0_")
             or line.startswith("| 1_")}
    gan_line, fm_line = lines[gan.name], lines[fm.name]
    assert "| one pass | 2000 (2.00x) | 0.6 | 300 (1.50x) | 90 | 5000 | 8000 | 60 |" in gan_line
    assert "| midpoint x 20 | 1500 (1.50x) |" in fm_line and "| 700 |" in fm_line
    assert not (tmp_path / "rep" / "report.md").exists()


def test_tradeoff_view_says_how_many_samples_of_a_diverging_model_were_finite(tmp_path):
    from gentwin.report import tradeoff_table

    base = {"chi2": 2000.0, "classifier/auc": 0.6, "finite_fraction": 1.0}
    fake_job(tmp_path / "runs", 0, ["experiment=tpc_cpu"], 1, base)
    assert "finite_fraction" not in "\n".join(tradeoff_table(build_report(tmp_path / "runs")))
    fake_job(tmp_path / "runs", 1, ["experiment=tpc_maf"], 1, {**base, "finite_fraction": 0.2424})
    lines = tradeoff_table(build_report(tmp_path / "runs"))
    assert "| finite_fraction |" in lines[4] and "| 0.2424 |" in lines[-2]
