"""TPC on the runner: every conditional model trains and samples, the real file, `sample`, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from conftest import assert_rounding_close, cli, compose, fit, run_dirs
from gentwin.commands.sample import main as sample_main
from gentwin.domains.tpc.properties import PROPERTY_NAMES
from gentwin.domains.tpc.reader import CONDITION_NAMES
from gentwin.training.evaluate import evaluate
from gentwin.training.fit import build

SMALL = ["threads=1", "metric=tpc", "dataset.n=512", "dataset.batch_size=16"]
GANS = ("wgan_gp", "gan", "cramer_gan")
MODELS = [("wgan_gp", []), ("gan", []), ("gan", ["model.loss.gp_weight=10"]), ("cramer_gan", []),
          ("cvae", []), ("realnvp", []), ("maf", [])]
V4PLUS = "[crossing_angle,dip_angle,drift_length,pad_coordinate,row,pT]"


def overrides(model: str, extra=(), dataset: str = "tpc") -> list[str]:
    steps = ["model.critic_steps=2"] if model in GANS else []
    return [f"model={model}", f"dataset={dataset}", *SMALL, *steps, *extra]


@pytest.mark.parametrize("model, extra", MODELS, ids=[m + ("_gp" if e else "") for m, e in MODELS])
def test_conditional_model_trains_and_samples_for_conditions(model, extra):
    cfg = compose(overrides(model, extra))
    dm, net = fit(cfg)
    assert dm.shape == (8, 16) and dm.cond_dim == 5 and dm.cond_names == list(CONDITION_NAMES)
    x = net.sample(40, dm.c_val[:40])
    assert x.shape == (40, 8, 16) and torch.isfinite(x).all()
    entries = {k: instantiate(v) for k, v in cfg.metric.entries.items()}
    metrics, figs, (fake, c) = evaluate(net, dm, entries, figures=False, seed=0)
    assert fake.shape == (128, 8, 16) and c.shape == (128, 5)
    assert metrics["finite_fraction"] == 1.0
    assert np.isfinite(metrics["chi2"]) and metrics["chi2"] > 0 and "chi2/chi2_amp" in metrics
    assert 0 <= metrics["classifier/auc"] <= 1 and np.isfinite(metrics["fpd"])
    assert "sparsity/spectrum_w1_floor" in metrics  # NaN when a side has no hit at all
    for key in ("n_hits_w1", "n_hits_chi2", "spectrum_chi2", "empty_fraction_diff"):
        assert np.isfinite(metrics[f"sparsity/{key}"]) and np.isfinite(metrics[f"sparsity/{key}_floor"])
    if net.has_likelihood:  # data-space density: the LogScale Jacobian included
        lp = net.log_prob(torch.as_tensor(dm.x_raw_val[:7]), dm.c_val[:7])
        assert lp.shape == (7,) and torch.isfinite(lp).all()


def test_distances_skip_images_without_moments():
    from gentwin.domains.tpc.properties import on_valid_events
    from gentwin.metrics.distances import w1_marginals

    rng = np.random.default_rng(0)
    real = {k: rng.normal(size=50) for k in PROPERTY_NAMES}
    fake = {k: v.copy() for k, v in real.items()}
    fake["Mean0"][3] = np.nan  # a zero-amplitude image
    out = on_valid_events(real, fake, None, metric=w1_marginals)
    assert set(out) == set(PROPERTY_NAMES) and all(np.isfinite(v) for v in out.values())
    assert out["Mean1"] == pytest.approx(w1_marginals(real, {k: np.delete(v, 3) for k, v in fake.items()})["Mean1"])


@pytest.mark.parametrize("model", ["gan", "lsgan", "wgan_gp", "cramer_gan"])
@pytest.mark.parametrize("data", [[], ["dataset.path=digits.dat"]], ids=["simulated", "file"])
def test_every_gan_gets_the_baseline_networks_on_simulated_and_file_data(model, data):
    from hydra.core.hydra_config import HydraConfig

    from gentwin.training.configs import specialisations

    cfg = compose([f"model={model}", "dataset=tpc", *data])
    assert (cfg.model.critic._target_, cfg.model.critic_steps, cfg.dataset.batch_size) == \
        ("gentwin.domains.tpc.nets.TPCCritic", 8, 32)
    assert specialisations(dict(HydraConfig.get().runtime.choices), cfg) == [
        "specialised for tpc: model.critic_steps=8, model.generator.head=TPCOutputActivation, model.critic=TPCCritic, "
        "dataset.batch_size=32 (configs/specialise/" + ("tpc_wgan_gp.yaml)" if model == "wgan_gp" else
                                f"tpc_{model}.yaml, which includes tpc_wgan_gp.yaml)")]
    off = compose([f"model={model}", "dataset=tpc", "~specialise"])
    assert off.model.critic._target_ == "gentwin.nets.mlp.MLPEncoder"


def test_baseline_specialization_and_preset():
    cfg = compose(["model=wgan_gp", "dataset=tpc"])
    assert cfg.metric.monitor == "chi2"  # the dataset picks its metric
    assert cfg.model.critic._target_ == "gentwin.domains.tpc.nets.TPCCritic"
    assert cfg.model.generator.head._target_ == "gentwin.domains.tpc.nets.TPCOutputActivation"
    assert (cfg.model.latent_dim, cfg.model.critic_steps, cfg.model.loss.gp_weight, cfg.dataset.batch_size) == \
        (32, 8, 10.0, 32)
    assert list(cfg.model.generator.hidden) == [32, 64, 64, 64, 128]
    preset = compose(["experiment=tpc_baseline"])
    assert preset.optimizer._target_ == "torch.optim.RMSprop" and preset.optimizer.lr == 1e-4
    assert preset.schedule.lr.gamma == 0.999 and preset.metric.monitor == "chi2"
    dm, net = build(compose(["experiment=tpc_baseline", "threads=1", "dataset.n=512"]))
    assert sum(p.numel() for p in net.critic.parameters()) == 61_121  # TPC-FastSim's discriminator


def test_held_out_conditions_map_back_to_the_events_profile_variables():
    dm, _ = build(compose(overrides("wgan_gp")))
    index = {img.tobytes(): i for i, img in enumerate(dm.events.images)}
    rows = np.array([index[img.tobytes()] for img in dm.x_raw_val])
    expected = dm.events.profile_variables()
    got = dm.conditions(dm.c_raw_val)
    assert list(got) == list(CONDITION_NAMES)
    # The normalised conditions are stored as float32: one rounding, half an eps of |c|, times the scale.
    scale = np.abs(dm.c_raw_val).max(0) * dm.cond_scale
    for i, (name, values) in enumerate(got.items()):
        assert_rounding_close(values, expected[name][rows], k=1, scale=scale[i], msg=name, dtype=torch.float32)
    props = dm.properties(dm.x_raw_val, dm.c_raw_val)
    assert list(props) == [*PROPERTY_NAMES, "cells"] and props["cells"].shape == (len(dm.x_raw_val), 128)
    from gentwin.domains.tpc.properties import on_valid_events
    from gentwin.metrics.distances import w1_marginals

    assert set(on_valid_events(props, props, None, metric=w1_marginals)) == set(PROPERTY_NAMES)  # not the cells


def test_figures_and_summary():
    cfg = compose(overrides("wgan_gp"))
    dm, net = fit(cfg, steps=1)
    entries = {k: instantiate(v) for k, v in cfg.metric.entries.items()}
    metrics, figs, (fake, c) = evaluate(net, dm, entries, figures=True, seed=0)
    assert set(figs) == {"profiles", "responses"}
    assert len(figs["profiles"].axes) == 5 * len(PROPERTY_NAMES)
    text = dm.summary(dm.real_properties(), dm.properties(fake, c))
    assert "chi2" in text and "largest terms" in text and "outside the window" in text


def test_real_file(tpc_file):
    cfg = compose(overrides("wgan_gp", ["dataset.n=null", f"dataset.path={tpc_file}"]))
    dm, net = fit(cfg, steps=1)
    assert (dm.n_train, len(dm.x_val)) == (3750, 1250)
    assert "0 hits in 0 events outside the window" in dm.describe()
    x = net.sample(16, dm.c_val[:16])
    assert x.shape == (16, 8, 16) and (x > 0).all()  # the TPC output activation keeps amplitudes positive


def test_file_feature_names_from_config(tmp_path):
    path = tmp_path / "digits.dat"
    path.write_text("".join(f"params: {a} 0.0 {40 + a}.5 30.25 7\n 30 {40 + a} 2.0 31 {41 + a} 1.0\n"
                            for a in range(40)))
    cfg = compose(overrides("cvae", [f"dataset.path={path}", "dataset.n=null", "dataset.batch_size=8",
                                     "dataset.feature_names=[crossing_angle,dip_angle,drift_length,"
                                     "pad_coordinate,station]"]))
    dm, _ = build(cfg)
    assert dm.events.names[-1] == "station" and dm.n_train == 30


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """One tiny end-to-end `run` on the simulator (2 validations, figures at the 1st only); its best checkpoint."""
    root = tmp_path_factory.mktemp("tpc_run")
    res = cli("run", *overrides("wgan_gp"), "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1",
              "metric.figures_every=2", cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    first = res.stdout.splitlines()[0]
    assert first == ("specialised for tpc: model.critic_steps=2 (overridden; the file's 8), model.generator.head="
                     "TPCOutputActivation, model.critic=TPCCritic, dataset.batch_size=16 (overridden; the file's 32) "
                     "(configs/specialise/tpc_wgan_gp.yaml)"), first
    (ckpt,) = root.glob("outputs/*/*/checkpoints/best.ckpt")
    return ckpt


@pytest.mark.slow
def test_figures_every_nth_validation(checkpoint):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(checkpoint.parents[1] / "tb"), size_guidance={"images": 0, "scalars": 0}).Reload()
    validations = [e.step for e in acc.Scalars("val/chi2")]
    assert len(validations) == 2
    for tag in ("val/profiles", "val/responses"):
        assert [e.step for e in acc.Images(tag)] == validations[::2]


@pytest.mark.slow
def test_sample_with_conditions_from_csv_and_npz(checkpoint, tmp_path, monkeypatch, capsys):
    rows = [(1.0, -20.0, 100.5, 30.25), (-5.0, 40.0, 200.125, 31.75), (12.0, 0.0, 60.0, 29.5)]
    csv = tmp_path / "cond.csv"
    csv.write_text("crossing_angle,dip_angle,drift_length,pad_coordinate\n" +
                   "".join(",".join(map(str, r)) + "\n" for r in rows))
    res = cli("sample", str(checkpoint), f"conditions={csv}", "out=a.npz", "threads=1", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    with np.load(tmp_path / "a.npz") as f:
        assert f["x"].shape == (3, 8, 16) and f["c"].shape == (3, 5) and np.isfinite(f["x"]).all()
        # Through float32 model conditions: one rounding, half an eps of |c| <= 1, times the scale 127.5 (1).
        assert_rounding_close(f["cond_drift_length"], [100.5, 200.125, 60.0], k=1, scale=127.5, dtype=torch.float32)
        assert_rounding_close(f["cond_pad_coordinate_frac"], [0.25, 0.75, 0.5], k=1, scale=1.0, dtype=torch.float32)
        c = f["c"]
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "cond.npz", c=c)
    assert sample_main([str(checkpoint), "conditions=cond.npz", "n=7", "out=b.npz", "threads=1"]) == 0
    with np.load(tmp_path / "b.npz") as f:
        assert f["x"].shape == (7, 8, 16)
        np.testing.assert_array_equal(f["c"], c[np.arange(7) % 3])  # n > rows cycles through them
    named = {"crossing_angle": [3.0], "dip_angle": [-7.0], "drift_length": [150.0], "pad_coordinate": [33.5]}
    np.savez(tmp_path / "named.npz", **named)
    assert sample_main([str(checkpoint), "conditions=named.npz", "out=n.npz", "threads=1"]) == 0
    with np.load(tmp_path / "n.npz") as f:
        assert f["x"].shape == (1, 8, 16) and f["cond_dip_angle"][0] == pytest.approx(-7.0)


@pytest.mark.slow
def test_sample_from_dataset_and_usage_errors(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert sample_main([str(checkpoint), "from_dataset=true", "n=20", "out=d.npz", "threads=1"]) == 0
    with np.load(tmp_path / "d.npz") as f:
        assert f["x"].shape == (20, 8, 16)
    capsys.readouterr()
    assert sample_main([str(checkpoint), "n=5", "out=e.npz", "threads=1"]) == 2
    assert "conditional on" in capsys.readouterr().err
    (tmp_path / "bad.csv").write_text("crossing_angle,dip_angle\n1,2\n")
    assert sample_main([str(checkpoint), "conditions=bad.csv", "out=e.npz", "threads=1"]) == 3
    assert "missing condition 'drift_length'" in capsys.readouterr().err
    assert sample_main([str(checkpoint), "conditions=bad.csv", "out=e.txt"]) == 2
    assert not (tmp_path / "e.npz").exists() and not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize("content", [b"params: 0 0 40 30\n 30 40 1.0\n", b"hello\n", bytes(range(256)) * 4])
def test_sample_refuses_a_file_that_is_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    res = cli("sample", str(path), "n=3", "out=x.npz", cwd=tmp_path)
    errors = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 2
    assert errors == [f"error: {path}: not a gentwin checkpoint (torch.load cannot read it as a checkpoint "
                      "of tensors and plain values)"]
    assert not (tmp_path / "x.npz").exists()


def test_malformed_digits_file_is_one_line_and_leaves_no_run_folder(tmp_path):
    bad = tmp_path / "bad.dat"
    bad.write_text("params: 0 0 40 30 23 0.5\n 30 40 1.0\nparams: 0 0 41 30 23 0.5\n 30 40 abc\n")
    res = cli("run", "dataset=tpc", f"dataset.path={bad}", f"dataset.feature_names={V4PLUS}", *SMALL[:2],
              cwd=tmp_path)
    assert res.returncode != 0
    errors = [line for line in res.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and f"{bad}:4:" in errors[0] and "malformed hit" in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert run_dirs(tmp_path) == []


def test_sample_arguments_accept_multirun_paths():
    from gentwin.commands.sample import parse
    from gentwin.errors import UsageError

    path = "outputs/multirun/x/0_model.latent_dim=8,seed=1/checkpoints/best.ckpt"
    assert parse([path, "n=3", "out=a=b.npz"]) == (path, {"n": "3", "out": "a=b.npz"})
    with pytest.raises(UsageError, match="unknown argument 'nn'"):
        parse([path, "nn=3"])
    with pytest.raises(UsageError, match="exactly one checkpoint"):
        parse(["n=3"])


@pytest.mark.slow
def test_far_conditions_are_refused_and_responses_written_as_digits(checkpoint, tmp_path):
    """The issue's example: an 80 degree crossing angle and a drift length of 5000 gave 1e14 ADC silently."""
    from gentwin.domains.tpc.reader import read_digits

    (tmp_path / "far.csv").write_text("crossing_angle,dip_angle,drift_length,pad_coordinate\n80,0,5000,30.5\n")
    res = cli("sample", str(checkpoint), "conditions=far.csv", "out=far.dat", "threads=1", cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.startswith("error: condition crossing_angle=80 deg (row 1 of far.csv) is "
                                                         "outside the training range"), res.stderr
    assert not (tmp_path / "far.dat").exists()
    (tmp_path / "ok.csv").write_text("crossing_angle,dip_angle,drift_length,pad_coordinate\n1,-20,100.5,30.25\n"
                                     "-5,40,200.125,31.75\n")
    res = cli("sample", str(checkpoint), "conditions=ok.csv", "out=responses.dat", "seed=2", "threads=1", cwd=tmp_path)
    assert res.returncode == 0 and "in the digits format" in res.stdout, res.stderr
    res = cli("sample", str(checkpoint), "conditions=ok.csv", "out=responses.npz", "seed=2", "threads=1", cwd=tmp_path)
    with np.load(tmp_path / "responses.npz") as f:
        x = f["x"]
    events = read_digits(tmp_path / "responses.dat", ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate",
                                                     "row", "pT"])
    np.testing.assert_array_equal(events.images, np.where(x > 0, x, 0))  # amplitudes at 9 digits: float32 exactly
    assert_rounding_close(events.features[:, 2], [100.5, 200.125], k=1, scale=127.5, dtype=torch.float32)


@pytest.mark.slow
@pytest.mark.usefixtures("onnx_registry_once")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_takes_the_track_variables_and_equals_sample(checkpoint, tmp_path, monkeypatch, fmt):
    """The exported file's c is a digits file's track variables in data units (degrees, time buckets, pads):
    the fractional parts and the baseline's scaling are inside the graph. Fed the noise `sample` draws, it
    gives `sample`'s responses; the sidecar names each variable with unit and training range."""
    import json

    from gentwin.commands.export import main as export_main
    from gentwin.training.checkpoint import load_model
    from gentwin.training.export import run_exported

    names = ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate"]
    rows = [(1.0, -20.0, 100.5, 30.25), (-5.0, 40.0, 200.125, -31.75), (12.0, 0.0, 60.0, 29.5),
            (-15.5, 55.0, 250.875, 0.125), (7.25, -45.0, 41.0, 1e3 + 0.5)]
    (tmp_path / "cond.csv").write_text(",".join(names) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    monkeypatch.chdir(tmp_path)
    assert sample_main([str(checkpoint), "conditions=cond.csv", "out=s.npz", "seed=3", "threads=1"]) == 0
    with np.load(tmp_path / "s.npz") as f:
        want = torch.from_numpy(f["x"])
    out = tmp_path / f"tpc.{'onnx' if fmt == 'onnx' else 'pt'}"
    assert export_main([str(checkpoint), "--format", fmt, "--out", str(out)]) == 0

    model = load_model(checkpoint)
    sampler = model.eval().export_module()
    torch.manual_seed(3)  # sample's draws
    (z,) = sampler.noise(len(rows))
    got = run_exported(out, fmt, (z, torch.tensor(rows)), ["z", "c"])
    # sample scales the variables in float64, the graph in float32: conditions within an eps of their
    # size (1), then the networks as in test_family_contract (k = 32 x 12 for TPC's 10^y - 1).
    assert got.shape == (5, 8, 16) and want.abs().max() > 0
    assert_rounding_close(got, want, k=32 * 12, msg=fmt)

    meta = json.loads(out.with_name(out.name + ".json").read_text())
    c_input = meta["inputs"][1]
    assert c_input["name"] == "c" and c_input["shape"] == ["B", 4] and meta["cond_names"] == names
    columns = {col["name"]: col for col in c_input["columns"]}
    assert list(columns) == names
    assert [columns[n]["unit"] for n in names] == ["deg", "deg", "time bucket", "pad"]
    ranges = model.build_info["cond_range"]  # the simulated training data's, in data units
    for name in names[:3]:
        assert columns[name]["training_range"] == ranges[name]
    lo, hi = ranges["drift_length"]  # in time buckets (simulate_tpc draws 35 to 290), not the scaled [-1, 1]
    assert 35 <= lo < 40 and 285 < hi <= 290 and -20 <= ranges["crossing_angle"][0] < ranges["crossing_angle"][1] <= 20
    assert columns["pad_coordinate"]["training_range"] is None and "% 1" in columns["pad_coordinate"]["rule"]
    assert [g["name"] for g in c_input["graph_conditions"]] == list(CONDITION_NAMES)
