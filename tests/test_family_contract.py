"""The family contract (``gentwin.models.base.GenerativeModel``) over every model config.

Each config trains two steps on a tiny dataset suited to it; GANs also with ``model.ema`` (the
averaged generator then differs from the trained one). For the same noise and conditions, ``sample``,
the export module and the files ``export-model`` writes (TorchScript, ONNX) give the same samples;
autoencoders reconstruct, families with a likelihood give a finite ``log_prob`` per sample, the
others refuse both.
"""

from __future__ import annotations

import functools
import inspect
import json

import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from conftest import assert_rounding_close, compose, fit, options
from gentwin.models import batches_per_step, family_class
from gentwin.training.export import export, run_exported
from gentwin.training.fit import build

pytestmark = pytest.mark.usefixtures("onnx_registry_once")  # conftest: built once per module

N = 5
# Tiny datasets: vectors (moons), images (digits), conditional (tpc: 5 conditions). ``dataset.n`` is
# per batch a training step takes (``batches_per_step``: a GAN's critic steps).
DATA = {
    "moons": ["dataset=moons", "dataset.batch_size=8"],
    "digits": ["dataset=digits", "dataset.batch_size=4"],
    "tpc": ["dataset=tpc", "dataset.batch_size=8"],
}
N_PER_STEP = {"moons": 64, "digits": 40, "tpc": 64}
# Every model config made tiny through the keys models share, wherever they sit (``model.critic.hidden``,
# ``model.flow.transforms``); a key holding an interpolation follows the one it names.
SMALL = {"latent_dim": 4, "hidden": [8], "hidden_features": [8], "transforms": 2, "base_filters": 4,
         "max_filters": 16}


def tiny(model_cfg, prefix: str = "model") -> list[str]:
    """Overrides setting every ``SMALL`` key in ``model_cfg`` (unresolved) to its small value."""
    out = []
    for k, v in model_cfg.items():
        if isinstance(v, DictConfig):
            out += tiny(v, f"{prefix}.{k}")
        elif k in SMALL and not OmegaConf.is_interpolation(model_cfg, k):
            out.append(f"{prefix}.{k}={SMALL[k]}".replace(" ", ""))
    return out


def config(model: str, dataset: str, extra=()):
    """The tiny run config of ``model`` on ``dataset``."""
    base = compose([f"model={model}", *DATA[dataset], *extra])
    n = N_PER_STEP[dataset] * batches_per_step(base.model)
    return compose([f"model={model}", *DATA[dataset], f"dataset.n={n}", "threads=1", *tiny(base.model), *extra])


@functools.cache
def data_for(model: str) -> str:
    """moons, unless the model's networks refuse vectors (they need ``(C, H, W)`` images): digits."""
    try:
        build(config(model, "moons"))
    except InstantiationException as e:
        if "(C, H, W)" not in str(e):
            raise
        return "digits"
    return "moons"


def takes_ema(model: str) -> bool:
    return "ema" in inspect.signature(family_class(compose([f"model={model}"]).model)).parameters


# (model config, dataset or None for ``data_for``, model.ema): every config; every one with an
# averaged generator (``ema``) with it; conditional ones on TPC (a flow, a GAN with ema, a VAE).
CASES = ([(m, None, None) for m in options("model")] + [(m, None, 0.5) for m in options("model") if takes_ema(m)]
         + [("realnvp", "tpc", None), ("wgan_gp", "tpc", 0.5), ("cvae", "tpc", None),
            ("flow_matching", "tpc", 0.5), ("flow_matching", "digits", None)])


def trained(model: str, dataset: str | None, ema: float | None):
    """``(dm, model)`` after two training steps of ``model`` on the tiny ``dataset``."""
    extra = [] if ema is None else [f"++model.ema={ema}"]
    return fit(config(model, dataset or data_for(model), extra), steps=2)


def trained_sampler(net, sampler):
    """``sampler`` with its averaged network (``<name>_ema.module`` of ``net``) swapped for the trained
    ``<name>`` (a GAN's generator, flow matching's velocity field)."""
    import copy

    from torch.optim.swa_utils import AveragedModel

    out = copy.copy(sampler)
    out._modules = dict(sampler._modules)
    for name, avg in net.named_children():
        if isinstance(avg, AveragedModel):
            swapped = [k for k, m in sampler.named_children() if m is avg.module]
            assert swapped, f"the export module runs {name}"
            out._modules[swapped[0]] = getattr(net, name.removesuffix("_ema"))
    return out


@pytest.mark.parametrize("model, dataset, ema", CASES,
                         ids=[m + (f"-{d}" if d else "") + ("-ema" if e else "") for m, d, e in CASES])
def test_sample_export_module_and_exported_files_agree(tmp_path, model, dataset, ema):
    dm, net = trained(model, dataset, ema)
    c = None if dm.c_val is None else dm.c_val[:N]
    torch.manual_seed(3)
    want = net.sample(N, c)
    assert want.shape == (N, *dm.shape) and torch.isfinite(want).all()
    assert net.training, "sample leaves the model's mode as it was"

    sampler = net.eval().export_module()  # as sample runs it: batchnorm with its running statistics
    torch.manual_seed(3)  # the same draws as sample: z, then a VAE's decoder noise eps
    z, *eps = sampler.noise(N)
    inputs = (z, *([] if c is None else [c]), *eps)
    with torch.no_grad():
        assert torch.equal(sampler(*inputs), want)  # sample runs this map: the same computation, bit for bit
        if ema is not None:  # the averaged network is the one that samples, not the trained one
            assert not torch.allclose(trained_sampler(net, sampler)(*inputs), want, rtol=1e-4, atol=1e-4)

    cond_input = dm.condition_inputs()
    feed = inputs
    if cond_input is not None:  # the export takes the variables the condition vectors are made of (TPC's)
        named = dm.conditions(dm.c_raw_val[:N])
        v = np.stack([named[n] if n in named else named[f"{n}_frac"] for n in cond_input.names], 1)
        feed = (z, torch.as_tensor(v, dtype=torch.float32), *eps)
    for fmt in ("torchscript", "onnx"):
        out, _ = export(tmp_path / "best.ckpt", fmt, tmp_path / f"sampler.{fmt}", verify=False, model=net)
        meta = json.loads(out.with_name(out.name + ".json").read_text())
        assert [i["name"] for i in meta["inputs"]] == sampler.input_names
        got = run_exported(out, fmt, feed, sampler.input_names)
        # Other kernels round in other orders: an output moves by about float32's error of the whole map,
        # a few eps times the largest output (measured: ONNX up to 1.2, TorchScript 0; torch within 1.0 of
        # float64); k = 32 leaves over 25 times that. TPC amplitudes are 10^y - 1 of the model's y (up to
        # about 5): the power multiplies y's error by ln(10) y, up to 12 (measured: ONNX 7.9, torch 3.8).
        assert_rounding_close(got, want, k=32 * (12 if dataset == "tpc" else 1), msg=fmt)


@pytest.mark.parametrize("model", options("model"))
def test_reconstruction_and_likelihood_where_the_family_has_them(model):
    dm, net = trained(model, None, None)
    x = torch.as_tensor(dm.x_raw_val[:N], dtype=torch.float32)
    c = None if dm.c_val is None else dm.c_val[:N]
    if net.can_reconstruct:
        x_hat = net.reconstruct(x, c)
        assert x_hat.shape == x.shape and torch.isfinite(x_hat).all()
        assert torch.equal(net.reconstruct(x, c), x_hat), "from the posterior mean: no noise"
        assert net.training, "reconstruct leaves the model's mode as it was"
    else:
        with pytest.raises(NotImplementedError, match="does not reconstruct"):
            net.reconstruct(x, c)
    if net.has_likelihood:
        with torch.no_grad():
            lp = net.log_prob(x, c)
        assert lp.shape == (N,) and torch.isfinite(lp).all()
    else:
        with pytest.raises(NotImplementedError, match="has no likelihood"):
            net.log_prob(x, c)
