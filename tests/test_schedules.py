from __future__ import annotations

import pytest
import torch

from gentwin.schedules import Constant, Cyclical, ExponentialToFloor, LinearWarmup


def test_schedules_give_their_defining_values():
    assert Constant(0.3)(123.0) == 0.3
    w = LinearWarmup(0.0, 2.0, epochs=4)
    assert [w(e) for e in (0, 1, 2, 4, 9)] == [0.0, 0.5, 1.0, 2.0, 2.0]
    # van Beek 2023 (leaf digital twin) §4.3 reading: 10 -> 100 over a 1000-epoch cycle, restart, 0 after the last
    # cycle.
    c = Cyclical(low=10, high=100, period=1000, ratio=1.0, cycles=5, final=0.0)
    assert c(0) == 10 and c(500) == pytest.approx(55) and c(999.999) == pytest.approx(100, abs=1e-3)
    assert c(1000) == 10 and c(5000) == 0.0
    half = Cyclical(low=0, high=1, period=10, ratio=0.5)
    assert [half(e) for e in (0, 2.5, 5, 7, 10)] == [0, 0.5, 1, 1, 0]
    with pytest.raises(ValueError):
        Cyclical(period=0)


def test_exponential_to_floor_decays_like_exponential_lr_then_holds_its_floor():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.RMSprop([p], lr=1e-3)
    sched = ExponentialToFloor(opt, gamma=0.5, eta_min=1e-4)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4, 1e-4, 1e-4])
    # A resumed scheduler continues where it was.
    again = ExponentialToFloor(torch.optim.RMSprop([p], lr=1e-3), gamma=0.5, eta_min=1e-4)
    again.load_state_dict(sched.state_dict())
    assert again.get_last_lr() == pytest.approx([1e-4])
    with pytest.raises(ValueError, match="gamma"):
        ExponentialToFloor(opt, gamma=1.5)
