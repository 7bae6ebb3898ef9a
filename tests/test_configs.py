"""Every option of every group composes; every model trains a step on every toy dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from conftest import TINY, compose, fit, options
from gentwin.errors import ConfigError
from gentwin.training.validation import validate

TOY = options("dataset")  # refined below once other domains add datasets
TOY = [d for d in TOY if compose([f"dataset={d}"]).dataset._target_.endswith("ToyDataModule")]
MODELS = ["gan", "lsgan", "wgan_gp", "cramer_gan", "vae", "nice", "realnvp", "maf"]


@pytest.mark.parametrize("group", ["optimizer", "schedule/lr", "schedule/beta", "trainer", "logger", "metric"])
def test_every_option_composes_and_instantiates(group):
    for option in options(group):
        cfg = compose([f"{group}={option}"])
        if group == "trainer" and cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available() \
                and not torch.backends.mps.is_available():
            with pytest.raises(ConfigError, match="trainer.accelerator=gpu: no CUDA device is available"):
                validate(cfg)
            continue
        validate(cfg)
        node = cfg
        for part in group.split("/"):
            node = node[part]
        if group == "metric":
            assert node.monitor and node.entries
            continue
        if group in ("trainer", "logger") or "_target_" not in node:
            continue
        obj = instantiate(node)
        if group == "optimizer":
            opt = obj([torch.nn.Parameter(torch.zeros(2))])
            assert opt.param_groups[0]["lr"] == node.lr
        elif group == "schedule/beta":
            assert math.isfinite(obj(0.0)) and math.isfinite(obj(3.5))


def test_no_two_config_files_have_the_same_body():
    from conftest import CONFIGS

    seen = {}
    for path in sorted(CONFIGS.rglob("*.yaml")):
        body = "\n".join(line for line in path.read_text().splitlines() if line.split("#")[0].strip())
        if path.parent.name == "specialise" and body.startswith("defaults:") and body.count("\n") == 1:
            continue  # a specialisation that only includes another (tpc_lsgan.yaml: the GAN networks) is no copy
        assert body not in seen, f"{path} has the body of {seen[body]}"
        seen[body] = path


def test_every_specialisation_applies_to_its_dataset_and_model_and_is_printed():
    from hydra.core.hydra_config import HydraConfig

    from conftest import CONFIGS
    from gentwin.training.configs import specialisations

    for path in sorted((CONFIGS / "specialise").glob("*.yaml")):
        dataset, model = next((d, m) for d in options("dataset") for m in options("model") if path.stem == f"{d}_{m}")
        cfg = compose([f"dataset={dataset}", f"model={model}"])
        (line,) = specialisations(dict(HydraConfig.get().runtime.choices), cfg)
        assert line.startswith(f"specialised for {dataset}: ") and f"(configs/specialise/{path.name}" in line
    cvae = compose(["experiment=tpc_cvae", "dataset.batch_size=64"])
    assert specialisations(dict(HydraConfig.get().runtime.choices), cvae) == [
        "specialised for tpc: dataset.batch_size=64 (overridden; the file's 256) (configs/specialise/tpc_cvae.yaml, "
        "which includes tpc_vae.yaml)"]


def test_a_new_model_needs_no_specialisation_line_and_help_survives_odd_files(tmp_path):
    import shutil

    from conftest import CONFIGS
    from gentwin.training.configs import specialisation_help

    root = tmp_path / "configs"
    shutil.copytree(CONFIGS, root)
    # a new GAN config with no defaults at all; a specialisation file that names no model
    (root / "model" / "hinge_gan.yaml").write_text("_target_: gentwin.models.gan.GAN\nlatent_dim: 8\n")
    (root / "specialise" / "tpc_nothing.yaml").write_text("# @package _global_\ndataset:\n  batch_size: 4\n")
    (root / "specialise" / "tpc_hinge_gan.yaml").write_text("# @package _global_\ndefaults:\n  - tpc_wgan_gp\n")
    lines = specialisation_help(root)
    assert "  tpc + cramer_gan, gan, hinge_gan, lsgan, wgan_gp: model.critic_steps=8, model.generator.head=" \
           "TPCOutputActivation, model.critic=TPCCritic, dataset.batch_size=32 (configs/specialise/tpc_wgan_gp.yaml)" \
           in lines
    assert "  (no <dataset>_<model> pair: specialise=tpc_nothing): dataset.batch_size=4 " \
           "(configs/specialise/tpc_nothing.yaml)" in lines
    # every model composes with every dataset, specialised or not (no model names anything for it)
    for model in options("model"):
        assert compose([f"model={model}", "dataset=moons"]).model._target_.startswith("gentwin.models.")


def test_every_experiment_preset_composes_and_is_valid():
    for preset in options("experiment"):
        cfg = compose([f"experiment={preset}"])
        validate(cfg)
        assert cfg.model._target_ and cfg.dataset._target_ and cfg.optimizer.lr > 0
    fast = compose(["experiment=tpc_fast"])
    assert fast.model.critic._target_ == compose(["experiment=tpc_baseline"]).model.critic._target_
    assert (fast.optimizer._target_, fast.optimizer.lr, fast.schedule.lr.gamma) == ("torch.optim.RMSprop", 1e-3, 0.99)
    # tpc_cpu: the same networks, loss and optimizer, 2 critic steps, the lr held at 1e-4.
    cpu = compose(["experiment=tpc_cpu"])
    assert cpu.model.critic == fast.model.critic and cpu.model.generator == fast.model.generator
    assert cpu.model.loss == fast.model.loss and cpu.model.critic_steps == 2
    assert (cpu.optimizer.lr, cpu.schedule.lr.gamma, cpu.schedule.lr.eta_min) == (1e-3, 0.99, 1e-4)


@pytest.mark.parametrize("dataset", TOY)
@pytest.mark.parametrize("model", MODELS)
def test_model_trains_on_toy_dataset(model, dataset, tmp_path):
    """Compose, build, two training steps and one validation; sample has the data's shape."""
    cfg = compose([f"model={model}", f"dataset={dataset}", *TINY, "model.critic_steps=2"]
                  if model in ("gan", "lsgan", "wgan_gp", "cramer_gan") else
                  [f"model={model}", f"dataset={dataset}", *TINY])
    dm, net = fit(cfg, limit_val_batches=1, root_dir=tmp_path)
    x = net.sample(50)
    assert x.shape == (50, *dm.shape) and torch.isfinite(x).all()
    if net.has_likelihood:
        lp = net.log_prob(torch.as_tensor(dm.x_raw_val[:7]))
        assert lp.shape == (7,) and torch.isfinite(lp).all()


@pytest.mark.parametrize("override, message", [
    ("model.latent_dim=0", "model.latent_dim=0: must be an integer >= 1"),
    ("model.critic_steps=0", "model.critic_steps=0: must be an integer >= 1"),
    ("optimizer.lr=-0.1", "optimizer.lr=-0.1: must be a number > 0"),
    ("dataset.batch_size=4000", "dataset.batch_size=4000"),
    ("model.loss.gp_weight=-1", "model.loss.gp_weight=-1"),
    ("dataset.val_fraction=1.5", "dataset.val_fraction=1.5"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0"),
])
def test_invalid_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate(compose([override]))


def test_default_config_is_valid_and_quick():
    cfg = compose()
    validate(cfg)
    assert cfg.trainer.accelerator == "cpu"
    assert np.isclose(cfg.dataset.val_fraction, 0.25)


@pytest.mark.parametrize("sweep", options("sweep"))
def test_every_sweep_file_composes_with_its_experiment_and_each_value_runs(sweep):
    """Each study file names its preset (`run -m experiment=<preset> sweep=<study>`); its params parse
    as sweeps, and the first and last value of each compose into a valid job config."""
    import re

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ValueType

    from conftest import CONFIGS

    text = (CONFIGS / "sweep" / f"{sweep}.yaml").read_text()
    experiments = set(re.findall(rf"run -m experiment=(\w+) sweep={sweep}\b", text))
    assert experiments, f"configs/sweep/{sweep}.yaml names no `run -m experiment=<preset> sweep={sweep}` command"
    for experiment in sorted(experiments):
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            params = hydra_compose("run", [f"experiment={experiment}", f"sweep={sweep}"],
                                   return_hydra_config=True).hydra.sweeper.params
        assert params
        for key, value in params.items():
            (override,) = OverridesParser.create().parse_overrides([f"{key}={value}"])
            assert override.is_sweep_override(), f"{key}={value} sweeps nothing"
            if override.value_type == ValueType.INTERVAL_SWEEP:  # a search's range: its two ends
                values = [str(override.value().start), str(override.value().end)]
            else:
                values = list(override.sweep_string_iterator())
            for one in {values[0], values[-1]}:
                validate(compose([f"experiment={experiment}", f"sweep={sweep}", f"{key}={one}"]))


def test_no_report_is_named_by_its_file_number():
    """Reports are cited by author and title (docs/references.md), never as "seed 00x" (a random seed)."""
    import re

    from conftest import ROOT

    pattern = re.compile(r"seed[ _-]?00[0-4]", re.IGNORECASE)
    files = [*(ROOT / "src" / "gentwin").rglob("*.py"), *(ROOT / "configs").rglob("*.yaml"), ROOT / "README.md",
             *(ROOT / "docs").glob("*.md")]
    named = [f"{f.relative_to(ROOT)}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
             if pattern.search(line)]
    assert not named, named
