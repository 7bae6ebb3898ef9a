"""`export`: the data-space sampler of a checkpoint as ONNX and TorchScript, checked against torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import EPS32, assert_rounding_close, compose
from gentwin.commands.export import main
from gentwin.data.transforms import Standardize
from gentwin.training.export import MAX_ONNX_PASSES, run_exported

pytestmark = pytest.mark.usefixtures("onnx_registry_once")  # conftest: built once per module

COND_NAMES = ["a", "b", "c"]
FLOWS = ("realnvp", "maf", "nice")


def make_model(name: str, cond_dim: int, shape=(2,), overrides=()):
    """An untrained model of ``configs/model/<name>.yaml`` with a fitted scaler, no dataset needed."""
    cfg = compose([f"model={name}", *overrides])
    g = torch.Generator().manual_seed(0)
    transform = Standardize().fit(torch.randn(64, *shape, generator=g) * 3 + 1)
    torch.manual_seed(0)
    model = instantiate(cfg.model, shape=shape, cond_dim=cond_dim, transform=transform).eval()
    model.build_info = {"model": OmegaConf.to_container(cfg.model, resolve=True),
                        "transform": {"_target_": "gentwin.data.transforms.Standardize"},
                        "cond_names": COND_NAMES[:cond_dim], "dataset": {}}
    return model


def save_checkpoint(model, path):
    """What Lightning writes: weights plus ``checkpoint["gentwin"]`` from ``on_save_checkpoint``."""
    ckpt = {"state_dict": model.state_dict(), "epoch": 0, "global_step": 0}
    model.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


def cond(n, cond_dim):
    return torch.randn(n, cond_dim, generator=torch.Generator().manual_seed(1)) if cond_dim else None


@pytest.mark.parametrize("name, cond_dim", [("wgan_gp", 0), ("wgan_gp", 3), ("vae", 0), ("cvae", 3)])
def test_sampler_reproduces_model_sample(name, cond_dim):
    model = make_model(name, cond_dim)
    sampler = model.export_module()
    c = cond(50, cond_dim)
    torch.manual_seed(5)
    want = model.sample(50, c)
    torch.manual_seed(5)  # the same draws as generate(): z, then the VAE's decoder noise
    inputs = [torch.randn(50, sampler.latent_dim)] + ([c] if cond_dim else [])
    if sampler.eps:
        inputs.append(torch.randn(50, *model.shape))
    with torch.no_grad():
        assert torch.equal(sampler(*inputs), want)


@pytest.mark.parametrize("name, cond_dim, fmt", [
    ("wgan_gp", 3, "onnx"),
    ("realnvp", 0, "onnx"),
    pytest.param("vae", 0, "onnx", marks=pytest.mark.slow),
    pytest.param("maf", 3, "onnx", marks=pytest.mark.slow),
    pytest.param("nice", 3, "onnx", marks=pytest.mark.slow),
    ("wgan_gp", 3, "torchscript"),
    ("vae", 0, "torchscript"),
    ("cvae", 3, "torchscript"),
    ("realnvp", 0, "torchscript"),
    ("nice", 3, "torchscript"),
    ("maf", 3, "torchscript"),
])
def test_export_from_a_checkpoint_matches_torch(tmp_path, capsys, name, cond_dim, fmt):
    # Flows with 2 transforms: the ONNX exporter's time grows with the unrolled graph (6: 5 s, 2: ~2 s).
    model = make_model(name, cond_dim, overrides=["model.flow.transforms=2"] if name in FLOWS else ())
    ckpt = save_checkpoint(model, tmp_path / "best.ckpt")
    out = tmp_path / f"sampler.{'onnx' if fmt == 'onnx' else 'pt'}"
    assert main([str(ckpt), "--format", fmt, "--out", str(out)]) == 0, capsys.readouterr().err
    assert f"wrote {out}" in capsys.readouterr().out

    meta = json.loads(out.with_name(out.name + ".json").read_text())
    sampler = model.export_module()
    assert meta["shape"] == [2] and meta["cond_dim"] == cond_dim and meta["cond_names"] == COND_NAMES[:cond_dim]
    assert meta["latent_dim"] == sampler.latent_dim and meta["format"] == fmt
    assert [i["name"] for i in meta["inputs"]] == sampler.input_names
    # ONNX Runtime's kernels (and TorchScript's fusions) sum and round in other orders than torch: an output
    # moves by about float32's error of the whole computation, a few eps times the largest output (measured:
    # ONNX up to 1.0, TorchScript 0; torch itself lies within 0.9 of float64). k = 32 leaves 30 times that.
    with torch.no_grad():  # the largest output of the built-in check's batch
        scale = sampler(*sampler.example_inputs(64, torch.Generator().manual_seed(0))).abs().max().item()
    assert meta["check"]["max_abs_diff"] <= 32 * EPS32 * scale

    # Independently of the built-in check: another batch size than at export, against torch.
    g = torch.Generator().manual_seed(7)
    inputs = sampler.example_inputs(33, g)
    with torch.no_grad():
        want = sampler(*inputs)
    got = run_exported(out, fmt, inputs, sampler.input_names)
    assert got.shape == (33, 2)
    assert_rounding_close(got, want, k=32)


def test_long_autoregressive_inverse_is_refused_for_onnx_with_advice(tmp_path, capsys):
    model = make_model("maf", 0, shape=(64,), overrides=["model.flow.transforms=3"])
    assert model.export_module().sequential_passes == 3 * 64 > MAX_ONNX_PASSES
    ckpt = save_checkpoint(model, tmp_path / "maf.ckpt")
    assert main([str(ckpt), "--format", "onnx", "--out", str(tmp_path / "maf.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "192 sequential network passes" in err[0] and "--format torchscript" in err[0]
    assert not (tmp_path / "maf.onnx").exists()


def test_not_a_checkpoint_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "model.ckpt"
    torch.save({"state_dict": {}}, bad)
    assert main([str(bad), "--format", "torchscript"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "not a gentwin checkpoint" in err[0]
    assert main([str(tmp_path / "missing.ckpt")]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
    junk = tmp_path / "junk.ckpt"
    junk.write_text("junk\n")
    assert main([str(junk)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a gentwin checkpoint" in err[0]


def test_the_export_check_measures_errors_against_the_largest_output():
    """A reordered float32 sum errs by the size of its largest terms: a small amplitude beside a large one
    may be off by far more than its own float32 rounding, and that is no export error."""
    from gentwin.training.export import TOLERANCE, difference

    want = torch.tensor([[1e4, 1.0], [0.0, 3.0]])
    got = want + torch.tensor([[0.0, 2e-3], [0.0, 0.0]])  # 2e-3 = about 17 eps32 of 1e4
    abs_diff, rel = difference(got, want)
    assert abs_diff == pytest.approx(2e-3, rel=1e-3) and rel == pytest.approx(2e-7, rel=1e-3)
    assert rel <= TOLERANCE
    assert difference(want * (1 + 1e-4), want)[1] > TOLERANCE  # a real error of 1e-4 of the output is caught
    assert difference(torch.tensor([0.5]), torch.tensor([0.25]))[1] == 0.25  # below 1: absolute


def test_key_value_arguments_are_the_options_spelt_as_every_command_takes_them(tmp_path, capsys):
    ckpt = save_checkpoint(make_model("gan", 0), tmp_path / "best.ckpt")
    out = tmp_path / "a=b" / "sampler.pt"  # a folder holding "=": a path, not an argument
    out.parent.mkdir()
    assert main([str(ckpt), "format=torchscript", f"out={out}", "check=false"]) == 0, capsys.readouterr().err
    assert out.is_file() and "check" not in json.loads(Path(f"{out}.json").read_text())
    assert main([str(ckpt), "format=torchscript", f"out={out}"]) == 2  # exists: replaced only with force
    assert main([str(ckpt), "format=torchscript", f"out={out}", "force=true"]) == 0
    assert "check" in json.loads(Path(f"{out}.json").read_text())  # checked this time (check defaults to true)
    with pytest.raises(SystemExit) as e:  # argparse names it: "unrecognized arguments: check=maybe"
        main([str(ckpt), "format=torchscript", f"out={out}", "check=maybe"])
    assert e.value.code == 2 and "check=maybe" in capsys.readouterr().err
