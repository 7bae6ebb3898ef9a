import math

import pytest
import torch

from gentwin.domains.tpc.nets import MaxPoolTime, SparseDropout, TPCCritic, TPCOutputActivation, tpc_output_activation

T = math.log10(2.0)


@pytest.mark.parametrize(
    "x, expected",
    [
        (-3.0, 0.1 * T * math.exp(-3.0)),  # x < 0: alpha T e^x
        (-1e-9, 0.1 * T * math.exp(-1e-9)),
        (0.0, 0.1 * T),  # 0 <= x <= delta: T (alpha + (1 - alpha) x / delta)
        (0.0025, T * (0.1 + 0.9 * 0.25)),
        (0.01, T),
        (0.5, T - 0.01 + 0.5),  # x > delta: T - delta + x
        (40.0, T - 0.01 + 40.0),
    ],
)
def test_output_activation_piecewise(x, expected):
    y = tpc_output_activation(torch.tensor([x], dtype=torch.float64))
    assert y.item() == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_output_activation_continuous_and_module():
    eps = 1e-9
    for delta, alpha, thr in [(0.01, 0.1, T), (0.2, 0.3, 1.5)]:
        f = TPCOutputActivation(delta, alpha, thr)
        for point in (0.0, delta):
            x = torch.tensor([point - eps, point, point + eps], dtype=torch.float64)
            y = f(x)
            assert (y.max() - y.min()).item() < 1e-6
        x = torch.linspace(-2, 2, 101, dtype=torch.float64)
        assert torch.equal(f(x), tpc_output_activation(x, delta, alpha, thr))
        assert (torch.diff(f(x)) > 0).all()  # monotone
    x = torch.tensor([-50.0, 0.005, 100.0], requires_grad=True)
    tpc_output_activation(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad[1].item() == pytest.approx(T * 0.9 / 0.01, rel=1e-5)


def test_critic_parameter_count_and_output():
    critic = TPCCritic(cond_dim=5)
    n_params = sum(p.numel() for p in critic.parameters())
    print(f"TPCCritic(cond_dim=5): {n_params} parameters")
    # conv (5+1)->16->16->32->32 (3x3 same), 64 (3x3 valid), 64 (2x2 valid): 52,032; dense 69->128->1: 9,089
    assert n_params == 61121
    critic.eval()
    torch.manual_seed(0)
    x, c = torch.rand(4, 8, 16), torch.rand(4, 5)
    score = critic(x, c)
    assert score.shape == (4,)
    assert torch.equal(score, critic(x.reshape(4, 128), c))
    assert torch.equal(score, critic(x[:, None], c))
    assert not torch.allclose(score, critic(x, c + 1.0))  # sees the conditions
    assert sum(p.numel() for p in TPCCritic(cond_dim=6).parameters()) == 61121 + 9 * 16 + 128


def test_sparse_dropout_is_bernoulli_dropout():
    torch.manual_seed(0)
    d = SparseDropout(0.02)
    x = torch.ones(4000, 500)
    y = d(x)
    dropped = y == 0
    # survivors scaled by 1 / (1 - p), as nn.Dropout
    assert torch.allclose(y[~dropped], torch.full_like(y[~dropped], 1 / 0.98))
    # drop rate p, per element (columns) and independent of the neighbour
    rate = dropped.float().mean().item()
    assert abs(rate - 0.02) < 4 * (0.02 * 0.98 / x.numel()) ** 0.5
    per_column = dropped.float().mean(0)
    sd = (0.02 * 0.98 / 4000) ** 0.5
    assert 0.02 - 5 * sd < per_column.min() and per_column.max() < 0.02 + 5 * sd
    pairs = (dropped[:, 1:] & dropped[:, :-1]).float().mean().item()
    assert abs(pairs - 0.02**2) < 1.5e-4
    # identity in eval mode and at p = 0; gradients flow through survivors
    assert d.eval()(x) is x and SparseDropout(0.0).train()(x) is x
    z = torch.randn(8, 16, requires_grad=True)
    SparseDropout(0.5).train()(z).sum().backward()
    assert set(z.grad.unique().tolist()) <= {0.0, 2.0}
    with pytest.raises(ValueError, match="dropout rate"):
        SparseDropout(1.0)


def test_max_pool_time_matches_max_pool():
    x = torch.randn(4, 3, 8, 16, requires_grad=True)
    assert torch.equal(MaxPoolTime()(x), torch.nn.MaxPool2d((1, 2))(x))
