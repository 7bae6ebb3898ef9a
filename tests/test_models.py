"""Family-level behaviour beyond 'it trains': generator averaging, checkpoints carry what sampling needs."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from conftest import TINY, compose
from gentwin.training.fit import build


def test_generator_ema_averages_the_updates_and_is_used_for_sampling(tmp_path):
    cfg = compose(["model=wgan_gp", "model.critic_steps=1", "model.ema=0.5", *TINY])
    L.seed_everything(0, verbose=False)
    dm, gan = build(cfg)
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(gan, datamodule=dm)
    assert int(gan.generator_ema.n_averaged) == 3
    p_raw = next(gan.generator.parameters())
    p_ema = next(gan.generator_ema.module.parameters())
    assert not torch.allclose(p_raw, p_ema)
    z = torch.randn(5, gan.latent_dim)
    gan.eval()
    torch.manual_seed(1)
    x = gan.generate(5)
    torch.manual_seed(1)
    z = torch.randn(5, gan.latent_dim)
    assert torch.allclose(x, gan.generator_ema.module(z)) and not torch.allclose(x, gan.generator(z))


def test_parameter_counts_leave_the_averaged_generator_out_of_the_trained_ones():
    # moons (2-D), latent 4: generator 4 -> 8 -> 2 (40 + 18), critic 2 -> 8 -> 1 (24 + 9).
    small = ["model.latent_dim=4", "model.generator.hidden=[8]", "model.critic.hidden=[8]", *TINY]
    _, gan = build(compose(["model=wgan_gp", "model.ema=0.5", *small]))
    assert gan.parameter_counts() == {"trainable": 58 + 33, "exported": 58, "batchnorm_statistics": 0}
    assert sum(p.numel() for p in gan.parameters()) == 58 + 33 + 58  # the averaged copy, not trained
    _, vae = build(compose(["model=vae", "model.latent_dim=4", "model.encoder.hidden=[8]",
                            "model.decoder.hidden=[8]", *TINY]))
    # encoder 2 -> 8 -> 2 * 4 (24 + 72), decoder 4 -> 8 -> 2 (40 + 18), log_sigma 2; samples: the decoder
    assert vae.parameter_counts() == {"trainable": 24 + 72 + 40 + 18 + 2, "exported": 40 + 18,
                                      "batchnorm_statistics": 0}


def test_batches_per_step_is_read_from_the_model_config_by_its_family():
    from gentwin.models import batches_per_step

    assert [batches_per_step(compose([f"model={m}"]).model) for m in ("wgan_gp", "lsgan", "vae", "realnvp")] \
        == [5, 1, 1, 1]
    assert batches_per_step(compose(["experiment=tpc_baseline"]).model) == 8  # the TPC specialisation's
    assert batches_per_step({"_target_": "gentwin.no_such.Model", "critic_steps": 3}) == 1  # instantiating says
    dm, _ = build(compose(["model=wgan_gp", "model.critic_steps=3", *TINY]))
    assert dm.batches_per_step == 3 and next(iter(dm.train_dataloader()))[0].shape[0] == 3


def test_evaluation_leaves_non_finite_samples_out_and_counts_them():
    from hydra.utils import instantiate

    from gentwin.training.evaluate import evaluate

    # One comparison of all samples (no floor's halving), so that the same samples give exactly 0.
    cfg = compose(["dataset=gaussian2d", *TINY, "metric.entries.multivariate.floor_splits=0"])
    dm = instantiate(cfg.dataset)
    dm.setup()

    class Stub(torch.nn.Module):  # returns the held-out data with every fourth sample NaN
        device = torch.device("cpu")
        has_likelihood = False

        def sample(self, n, c=None):
            x = torch.as_tensor(dm.x_raw_val[:n]).clone()
            x[::4] = float("nan")
            return x

    entries = {k: instantiate(v) for k, v in cfg.metric.entries.items()}
    metrics, _, _ = evaluate(Stub(), dm, entries, figures=False)
    assert metrics["finite_fraction"] == 0.75
    assert metrics["w1/x0"] == 0.0 and metrics["multivariate/energy"] == 0.0  # the finite rest is the data


def test_held_out_properties_are_those_of_the_evaluated_slice_and_computed_once():
    from hydra.utils import instantiate

    dm = instantiate(compose(["dataset=gaussian2d", *TINY, "++dataset.n_eval=20"]).dataset)
    dm.setup()
    real = dm.real_properties()
    assert real is dm.real_properties()
    assert list(real) == ["x0", "x1"] and all(np.array_equal(real[f"x{i}"], dm.x_raw_val[:20, i]) for i in (0, 1))
