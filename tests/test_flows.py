"""The zuko couplings and MADE transforms invert and report the log-determinant autograd computes."""

from __future__ import annotations

import pytest
import torch
import zuko

from conftest import assert_rounding_close
from gentwin.nets.flows import nice, realnvp

FLOWS = {"nice": nice, "realnvp": realnvp, "maf": zuko.flows.MAF}


@pytest.mark.parametrize("name", sorted(FLOWS))
@pytest.mark.parametrize("context", [0, 3])
def test_transform_inverts_and_logdet_matches_autograd_jacobian(name, context):
    torch.manual_seed(0)
    flow = FLOWS[name](features=4, context=context, transforms=4, hidden_features=[32, 32]).double()
    # Move the weights away from their near-identity initialisation.
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    c = torch.randn(8, context, dtype=torch.float64) if context else None
    transform = flow(c).transform
    x = torch.randn(8, 4, dtype=torch.float64)
    y, ladj = transform.call_and_ladj(x)
    assert torch.allclose(transform.inv(y), x, atol=1e-5)
    for i in range(len(x)):
        ci = None if c is None else c[i : i + 1]
        ti = flow(ci).transform
        jac = torch.autograd.functional.jacobian(lambda v, ti=ti: ti(v[None])[0], x[i])
        assert torch.allclose(torch.linalg.slogdet(jac).logabsdet, ladj[i], atol=1e-4)


def test_nice_couplings_preserve_volume_and_realnvp_scale_is_tanh_bounded():
    torch.manual_seed(0)
    flow = nice(features=4, transforms=3)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x = torch.randn(5, 4)
    couplings = flow().transform.transforms[:-1]
    # Additive couplings: log|det J| = 0 whatever the weights; only the final diagonal scale counts.
    for t in couplings:
        assert torch.allclose(t.call_and_ladj(x)[1], torch.zeros(5))
    scale = flow().transform.transforms[-1]
    # The same 4 log-scales summed, maybe in another order: within 3 eps of the sum of their sizes (measured: 0).
    log_scale = scale.base.log_scale
    assert_rounding_close(scale.call_and_ladj(x)[1], log_scale.sum().expand(5), k=4, scale=log_scale.abs().sum())
    flow = realnvp(features=4, transforms=2)
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(100.0)  # huge raw scales: tanh keeps each coordinate's log-scale in [-1, 1]
    for t in flow().transform.transforms:
        ladj = t.call_and_ladj(x)[1]
        assert (ladj.abs() <= 2 + 1e-5).all()  # two transformed coordinates of four
