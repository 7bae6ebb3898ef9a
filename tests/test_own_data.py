"""Your own simulator end to end: a CaloChallenge-shaped file in MeV, from training to `sample`, `evaluate`,
the exports fed data-unit conditions, and the TPC digits written back."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from conftest import assert_rounding_close, cli, compose, fit
from gentwin.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("onnx_registry_once")  # conftest: built once

N = 320
SMALL = ["threads=1", "dataset.batch_size=16", "trainer.max_epochs=1"]
FAMILIES = ["wgan_gp", "cvae", "realnvp"]  # GAN, VAE, flow


def calo(path, n=N, seed=0, low=8, high=23):
    """CaloChallenge's layout in MeV: incident energies (N, 1) of 2**8 = 256 MeV to 2**22 MeV (4.2 TeV),
    showers (N, 10) sharing that energy."""
    rng = np.random.default_rng(seed)
    energy = 2.0 ** rng.integers(low, high, (n, 1))
    shower = rng.dirichlet(np.ones(10), n) * energy * rng.normal(1, 0.05, (n, 1))
    with h5py.File(path, "w") as f:
        f["incident_energies"], f["showers"] = energy.astype(np.float32), shower.astype(np.float32)
    return path


def arrays(path, *more):
    return ["dataset=arrays", f"dataset.path={path}", "dataset.x=showers", "dataset.c=incident_energies", *more]


@pytest.mark.parametrize("model", FAMILIES)
@pytest.mark.parametrize("cond", [[], ["dataset/cond_transform=log_standardize"]])
def test_every_conditional_family_trains_on_conditions_of_order_1e6(tmp_path, model, cond):
    cfg = compose(arrays(calo(tmp_path / "calo.h5"), "dataset/transform=log1p_standardize", *cond,
                         f"model={model}", *SMALL))
    dm, net = fit(cfg, steps=3)  # a non-finite loss raises Diverged before its update
    assert dm.c_raw_val.max() > 1e6 and dm.c_train.abs().max() < 4  # the networks see unit-scale conditions
    x = net.sample(len(dm.c_raw_val), torch.as_tensor(dm.c_raw_val))  # data units in, data units out
    assert torch.isfinite(x).all()
    assert dm.cond_range["incident_energies"] == (256.0, 2.0**22)


def test_untransformed_conditions_are_named_as_the_likely_cause(tmp_path):
    cfg = compose(arrays(calo(tmp_path / "calo.h5"), "dataset/cond_transform=none", "model=wgan_gp", *SMALL))
    from gentwin.training.fit import build

    dm, _ = build(cfg)
    hint = dm.scale_hint()
    assert "conditions 'incident_energies' reach 4.19e+06 after dataset.cond_transform (Identity)" in hint
    assert "dataset/cond_transform=log_standardize" in hint
    dm2, _ = build(compose(arrays(tmp_path / "calo.h5", "model=wgan_gp", *SMALL)))
    assert dm2.scale_hint() == ""  # standardized by default


def test_bad_units_and_a_transform_that_cannot_apply_are_one_line_and_write_nothing(tmp_path):
    from gentwin.training.fit import build

    path = calo(tmp_path / "calo.h5")
    with pytest.raises(ConfigError, match=r"dataset.units.showers='Mev' is not a known unit; known: 1, eV, keV, MeV"):
        build(compose(arrays(path, "dataset.units={showers: Mev}", "model=wgan_gp", *SMALL)))
    with pytest.raises(ConfigError, match=r"dataset.units names \['energy'\], which the dataset does not read"):
        build(compose(arrays(path, "dataset.units={energy: MeV}", "model=wgan_gp", *SMALL)))
    with h5py.File(path, "a") as f:
        f["incident_energies"][0] = -1.0
    with pytest.raises(DataError, match=r"dataset.cond_transform (on the conditions \['incident_energies'\]: transform "
                                        r"step 'log' needs x > 0|\(Elementwise\) cannot take the condition "
                                        r"incident_energies=-1 of row 0: it gives nan)"):
        build(compose(arrays(path, "dataset/cond_transform=log", "model=wgan_gp", *SMALL)))
    r = cli("run", *arrays(path, "dataset/cond_transform=log", "model=wgan_gp", *SMALL), "hydra.run.dir=r",
            cwd=tmp_path)
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "r").exists()


def trained(tmp_path, model: str, *more: str):
    """A checkpoint of ``model`` trained 2 steps on the MeV file (no run folder: quick)."""
    import lightning as L

    from gentwin.training.fit import build

    cfg = compose(arrays(calo(tmp_path / "calo.h5"), *more, f"model={model}", *SMALL,
                         "dataset.units={showers: MeV, incident_energies: MeV}"))
    L.seed_everything(0, verbose=False)
    dm, net = build(cfg)
    trainer = L.Trainer(max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                        num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(net, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    return tmp_path / "m.ckpt"


@pytest.mark.parametrize("model", FAMILIES)
def test_the_exports_fed_data_unit_conditions_equal_samples_output(tmp_path, model):
    import onnxruntime as ort

    from gentwin.training.checkpoint import load_model
    from gentwin.training.export import export

    ckpt = trained(tmp_path, model, "dataset/cond_transform=log_standardize")
    energies = np.array([[300.0], [5e3], [1e5], [4e6]], np.float32)  # MeV
    with h5py.File(tmp_path / "cond.h5", "w") as f:
        f["incident_energies"] = energies
    r = cli("sample", str(ckpt), "conditions=cond.h5", "out=gen.h5", "seed=7", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with h5py.File(tmp_path / "gen.h5") as f:
        want = f["showers"][:]
        assert f["showers"].attrs["unit"] == "MeV"
        np.testing.assert_array_equal(f["incident_energies"][:], energies)
    net = load_model(ckpt)
    torch.manual_seed(7)  # `sample seed=7` draws z, then eps, as Sampler.noise does
    noise = net.export_module().noise(len(energies))
    feed = [noise[0], torch.as_tensor(energies), *noise[1:]]
    meta = {}
    for fmt, out in (("onnx", tmp_path / "m.onnx"), ("torchscript", tmp_path / "m.pt")):
        export(ckpt, fmt, out, model=net)
        meta = json.loads(out.with_name(out.name + ".json").read_text())
        names = [i["name"] for i in meta["inputs"]]
        if fmt == "onnx":
            session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            (got,) = session.run(["x"], {k: v.numpy() for k, v in zip(names, feed, strict=True)})
        else:
            got = torch.jit.load(str(out))(*feed)
        # A few layers of float32 sums in another order, then exp of the log-transform: 64 roundings of the largest.
        assert_rounding_close(got, want, 64, msg=f"{model} {fmt}")
    (column,) = meta["inputs"][1]["columns"]
    assert column == {"name": "incident_energies", "unit": "MeV", "training_range": [256.0, 2.0**22],
                      "rule": column["rule"]}
    assert meta["outputs"][0] | {"shape": None} == {"name": "x", "shape": None, "dtype": "float32", "space": "data",
                                                    "unit": "MeV", "file_name": "showers"}
    assert meta["cond_transform"]["_target_"] == "gentwin.data.transforms.Chain"


def test_out_of_range_conditions_are_refused_or_generated_with_a_warning(tmp_path):
    ckpt = trained(tmp_path, "wgan_gp")
    with h5py.File(tmp_path / "far.h5", "w") as f:
        f["incident_energies"] = np.array([[1e3], [1e8], [5e9]], np.float32)
    r = cli("sample", str(ckpt), "conditions=far.h5", "out=gen.h5", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: condition incident_energies=1e+08 MeV (row 2 of far.h5) is outside the training range "
        "[256, 4.1943e+06]; 2 row(s) are: give extrapolate=true to generate anyway"]
    assert not (tmp_path / "gen.h5").exists()
    r = cli("sample", str(ckpt), "conditions=far.h5", "out=gen.h5", "extrapolate=true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "warning: 2 of 3 condition rows lie outside the training range (incident_energies)" in r.stderr
    assert h5py.File(tmp_path / "gen.h5")["showers"].shape == (3, 10)


def test_a_condition_the_transform_cannot_take_is_refused_even_when_extrapolating(tmp_path):
    ckpt = trained(tmp_path, "wgan_gp", "dataset/cond_transform=log")
    np.savez(tmp_path / "neg.npz", incident_energies=np.array([1e3, -5.0]))  # (N,) as well as (N, 1)
    r = cli("sample", str(ckpt), "conditions=neg.npz", "out=gen.npz", "extrapolate=true", cwd=tmp_path)
    assert r.returncode == 3 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "condition incident_energies=-5 (row 2) is outside the domain of the model's condition transform" in r.stderr
    assert not (tmp_path / "gen.npz").exists()
    np.savez(tmp_path / "wide.npz", c=np.ones((4, 2), np.float32))  # a run's samples.npz layout, 2 columns
    r = cli("sample", str(ckpt), "conditions=wide.npz", "out=gen.npz", cwd=tmp_path)
    assert r.returncode == 3 and "conditions of shape (4, 2), the model needs (N, 1)" in r.stderr


@pytest.mark.parametrize("suffix", [".h5", ".root", ".npz"])
def test_sample_then_evaluate_reads_the_output_by_the_training_files_names(tmp_path, suffix):
    ckpt = trained(tmp_path, "wgan_gp")
    ref = calo(tmp_path / "ref.h5", n=60, seed=1)
    energies = h5py.File(ref)["incident_energies"][:]
    np.savetxt(tmp_path / "cond.csv", energies, header="incident_energies", comments="")  # (N,) columns too
    out = f"gen{suffix}"
    r = cli("sample", str(ckpt), "conditions=cond.csv", f"out={out}", "seed=3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = cli("evaluate", "ref.h5", out, "x=showers", "c=incident_energies", "out=ev", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert result["n_reference"] == 60 and result["n_generated"] == 60
    again = tmp_path / f"again{suffix}"
    assert cli("sample", str(ckpt), "conditions=cond.csv", f"out={again.name}", "seed=3", cwd=tmp_path).returncode == 0
    from gentwin.data.files import read_arrays

    a, b = (read_arrays(p, "showers", "incident_energies", n=None) for p in (tmp_path / out, again))
    np.testing.assert_array_equal(a.x, b.x)  # seed=3 twice: the same samples
    np.testing.assert_array_equal(a.c, energies)


def test_tpc_responses_written_as_digits_are_read_back_equal(tmp_path):
    from gentwin.domains.tpc.datamodule import TPCDataModule

    dm = TPCDataModule(n=200, batch_size=16)
    dm.setup()
    x = dm.x_raw_val
    line = dm.write_responses(x, tmp_path / "responses.dat", dm.c_raw_val)
    assert line.startswith(f"wrote {len(x)} responses") and "digits format" in line
    from gentwin.domains.tpc.reader import read_digits

    names = ["crossing_angle", "dip_angle", "drift_length", "pad_coordinate"]  # a simulation's, as written
    assert (tmp_path / "responses.dat").read_text().splitlines()[0].count(" ") == len(names)
    events = read_digits(tmp_path / "responses.dat", names)
    np.testing.assert_array_equal(events.images, np.where(x > 0, x, 0))  # amplitudes written exactly (9 digits)
    # the conditions come back through the digits' float32 params: a float32 rounding of the raw values
    want = dm.condition_vectors(events.profile_variables())
    assert_rounding_close(want, dm.c_raw_val, 8, scale=np.abs(dm.c_raw_val).max() * 127.5)
