"""Failures said out loud (NaN monitor, KL collapse, never-zero samples) and metrics beside their floors."""

from __future__ import annotations

import json
import math

import numpy as np
import torch

from conftest import TINY, compose
from gentwin.metrics.distances import multivariate
from gentwin.training.fit import beside_floor, build, summary
from gentwin.training.outcome import outcome_warnings


def test_nan_monitor_warns_with_the_valid_share(tmp_path):
    metrics = {"prop/mean_w1": math.nan, "prop/valid_rate": 0.0, "best_epoch": 4, "epochs": 4}
    said = outcome_warnings(metrics, "prop/mean_w1")
    assert len(said) == 1 and said[0].startswith("prop/mean_w1 is nan (0% of the generated samples were valid)")
    assert "not chosen" in said[0]
    (tmp_path / "metrics.json").write_text(json.dumps({"metrics": metrics, "warnings": said}))
    text = summary(metrics, "prop/mean_w1", tmp_path)
    assert text.splitlines()[-1] == f"warning: {said[0]}"
    assert outcome_warnings({"prop/mean_w1": 0.3}, "prop/mean_w1") == []


def test_kl_collapse_of_a_vae_whose_encoder_gives_the_prior():
    dm, model = build(compose([*TINY, "model=vae"]))
    last = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)  # mean 0, log-variance 0: the posterior is the prior, KL exactly 0
    x = torch.as_tensor(dm.x_raw_val, dtype=torch.float32)
    kl = model.diagnostics(x)["kl"]
    assert kl == 0.0
    said = outcome_warnings({"multivariate/energy": 0.1, "kl": kl}, "multivariate/energy")
    assert len(said) == 1 and said[0].startswith("KL collapse: the posterior is 0 nats per sample")
    torch.nn.init.constant_(last.bias, 1.0)  # mean 1, variance e: KL = L/2 (1 + e - 1 - 1) = L (e - 1) / 2 per sample
    assert abs(model.diagnostics(x)["kl"] - model.latent_dim * (math.e - 1) / 2) < 1e-4
    assert outcome_warnings({"multivariate/energy": 0.1, "kl": 0.5}, "multivariate/energy") == []


def test_never_zero_samples_where_the_data_are_zero_a_fifth_of_the_time():
    rng = np.random.default_rng(0)
    real = rng.exponential(size=(500, 10)) * (rng.random((500, 10)) > 0.2)  # 20 % zeros
    smeared = rng.exponential(size=(500, 10)) + 1e-3
    said = outcome_warnings({"m": 1.0}, "m", real, smeared)
    assert len(said) == 1 and said[0].startswith("never zero: the data are exactly 0 in 20% of their values, "
                                                 "the samples in 0.0%")
    assert outcome_warnings({"m": 1.0}, "m", real, real[::-1]) == []  # as many zeros: nothing to say
    assert outcome_warnings({"m": 1.0}, "m", smeared, smeared) == []  # data without zeros
    images = (rng.random((200, 64)) > 0.5).astype(float)  # binary images, half zero; a sigmoid's 1e-4 is zero
    assert outcome_warnings({"m": 1.0}, "m", images, np.clip(images, 1e-4, 1 - 1e-4)) == []


def test_energy_beside_its_floor_for_equal_and_shifted_distributions():
    rng = np.random.default_rng(1)
    real, same, shifted = rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + 0.3
    as_dict = lambda a: {"x0": a[:, 0], "x1": a[:, 1]}  # noqa: E731
    ok = multivariate(as_dict(real), as_dict(same), floor_splits=3)
    bad = multivariate(as_dict(real), as_dict(shifted), floor_splits=3)
    assert ok["energy_floor"] == bad["energy_floor"] > 0  # the floor depends on the real data only
    assert abs(ok["energy"] - ok["energy_floor"]) < 3 * ok["energy_floor_std"]
    assert bad["energy"] > 10 * bad["energy_floor"]
    assert set(multivariate(as_dict(real), as_dict(same))) == {"energy", "sliced_w1"}  # no floor unless asked


def test_summary_prints_the_floor_and_leaves_out_a_chi2_without_one(tmp_path):
    m = {"multivariate/energy": 0.0041, "multivariate/energy_floor": 0.0035, "multivariate/energy_floor_std": 0.001,
         "chi2/x0": 1608.0, "chi2/x0_nbins": 16.0, "w1/x0": 0.02, "best_epoch": 55, "epochs": 60}
    assert beside_floor(m, "multivariate/energy") == "0.0041 (floor 0.0035 ± 0.001: 1.2x)"
    text = summary(m, "multivariate/energy", tmp_path)
    assert "final multivariate/energy = 0.0041 (floor 0.0035 ± 0.001: 1.2x) (best checkpoint, epoch 55 of 60)" in text
    assert "chi2" not in text and "w1/x0 0.02" in text and "warning" not in text
