"""Toy simulators, transforms and batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gentwin.data.base import EpochBatches
from gentwin.data.transforms import Chain, Elementwise, Identity, Standardize
from gentwin.domains.toy import simulators as toy
from gentwin.domains.toy.datamodule import ToyDataModule
from gentwin.errors import ConfigError


def test_simulators_are_seeded_and_have_the_configured_statistics():
    rng = lambda: np.random.default_rng(7)
    for name, f in toy.SIMULATORS.items():
        a, b = f(500, rng()), f(500, rng())
        assert a.shape == (500, 2) and np.array_equal(a, b), name
    u = toy.u_shape(20_000, rng(), rmin=-1, rmax=2)
    assert u[:, 0].min() >= -1 and u[:, 0].max() <= 2 and np.allclose(u[:, 1], u[:, 0] ** 2)
    g = toy.gaussian2d(200_000, rng(), mean=[1, 3], var=[0.5, 3], corr=0.6)
    assert np.allclose(g.mean(0), [1, 3], atol=0.02)
    assert np.allclose(g.var(0), [0.5, 3], rtol=0.02)
    assert np.corrcoef(g.T)[0, 1] == pytest.approx(0.6, abs=0.01)
    point = toy.gaussian2d(100, rng(), mean=1.0, var=0.0)
    assert np.all(point == 1.0)
    mix = toy.gaussian_mixture(8000, rng(), k=4, radius=2.0, std=0.01)
    angles = (np.round(np.degrees(np.arctan2(mix[:, 1], mix[:, 0])) / 90) * 90) % 360
    assert sorted(np.unique(angles).tolist()) == [0, 90, 180, 270]
    r = np.hypot(*toy.ring(5000, rng(), radius=2, width=0.01).T)
    assert abs(r.mean() - 2) < 0.01


def test_invalid_toy_parameters_are_refused():
    with pytest.raises(ConfigError, match="dataset.var"):
        toy.gaussian2d(10, np.random.default_rng(0), var=-1)
    with pytest.raises(ConfigError, match="dataset.rmin"):
        toy.u_shape(10, np.random.default_rng(0), rmin=2, rmax=1)
    with pytest.raises(ConfigError, match="dataset.name"):
        ToyDataModule(name="banana")


@pytest.mark.parametrize("transform", [
    Identity(), Standardize(), Elementwise(["log", "sqrt", "exp"], shift=3.0),
    Chain(Elementwise(["log10p"]), Standardize()),
])
def test_transforms_round_trip_and_logdet(transform):
    x = torch.rand(64, 3, dtype=torch.float64) * 4 + 0.5
    transform.double().fit(x)
    assert torch.allclose(transform.inverse(transform(x)), x, atol=1e-10)
    jac = torch.autograd.functional.jacobian(lambda v: transform(v[None])[0], x[0])
    assert transform.log_abs_det_jacobian(x[:1]).item() == pytest.approx(torch.linalg.slogdet(jac).logabsdet.item())


def test_standardize_handles_zero_variance_and_reloads_its_shape():
    x = torch.tensor([[1.0, 2.0], [1.0, 4.0]])
    t = Standardize().fit(x)
    assert torch.equal(t.std, torch.tensor([1.0, 1.0]))
    fresh = Standardize()
    fresh.load_state_dict(t.state_dict())
    assert torch.equal(fresh(x), t(x))


def test_non_invertible_chain_is_refused_by_name():
    # Calvo Ordoñez 2022 (generative ML for particle physics) §5.1: negative values lose their sign in the log / sqrt
    # chain.
    x = torch.tensor([[-1.5, 1.0], [0.5, 2.0]])
    with pytest.raises(ValueError, match=r"'log' needs x > 0 .* feature\(s\) \[0\]"):
        Elementwise(["log", "sqrt"]).fit(x)
    Elementwise(["log", "sqrt"], shift=3.0).fit(x)  # shifted into the domain: accepted


def test_epoch_batches_group_critic_steps_and_cover_each_epoch_once():
    x = torch.arange(100.0).view(50, 2)
    batches = EpochBatches(x, None, batch_size=4, per_step=3, seed=0)
    items = list(batches)
    assert len(items) == len(batches) == 4
    assert all(xb.shape == (3, 4, 2) and cb is None for xb, cb in items)
    seen = torch.cat([xb.reshape(-1, 2) for xb, _ in items])[:, 0]
    assert len(set(seen.tolist())) == 48  # no repeats within an epoch
    assert not torch.equal(next(iter(batches))[0], items[0][0])  # reshuffled next epoch
    shards = [EpochBatches(x, None, 4, 1, seed=0, rank=r, world_size=2) for r in (0, 1)]
    a, b = (torch.cat([xb.reshape(-1, 2) for xb, _ in s]) for s in shards)
    assert not set(a[:, 0].tolist()) & set(b[:, 0].tolist())
