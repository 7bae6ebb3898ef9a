"""The accelerator path of the finite-loss guarantee, forced on the CPU: a non-finite loss is refused
on the device (weights and optimizer state untouched) and ends the run with ``Diverged`` (exit 4)
within the logging interval; no training step reads a tensor on the host between logging steps."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

import gentwin
from conftest import TINY, cli, compose
from gentwin.domains.tpc.nets import SparseDropout
from gentwin.errors import ConfigError, Diverged
from gentwin.models.base import GenerativeModel
from gentwin.training.fit import build
from gentwin.training.validation import validate

EVERY = 4


def trainer(tmp_path, steps: int) -> L.Trainer:
    return L.Trainer(max_steps=steps, limit_val_batches=0, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                     num_sanity_val_steps=0, log_every_n_steps=EVERY, default_root_dir=tmp_path)


def test_the_per_step_check_stays_the_default_on_the_cpu_and_a_config_can_choose():
    assert GenerativeModel.finite_check is None
    dm, model = build(compose(["model=vae", *TINY]))
    assert model.finite_check is None and not model.deferred_check
    cfg = compose(["model=wgan_gp", *TINY, "+model.finite_check=deferred"])
    validate(cfg)
    assert build(cfg)[1].deferred_check
    with pytest.raises(ConfigError, match="model.finite_check=sometimes: must be 'step', 'deferred' or null"):
        validate(compose(["model=vae", *TINY, "+model.finite_check=sometimes"]))


@pytest.mark.parametrize(("overrides", "fail_call"), [
    (["model=wgan_gp", "model.critic_steps=3", "optimizer=rmsprop"], 7),  # a critic step of step 2
    (["model=wgan_gp", "model.critic_steps=2", "optimizer=adam"], 5),
    (["model=vae", "optimizer=adam"], 3),
    (["model=vae", "optimizer=rmsprop"], 0),  # the first step: its optimizer state did not exist
])
def test_a_non_finite_loss_leaves_weights_and_optimizer_state_as_they_were(tmp_path, overrides, fail_call):
    L.seed_everything(0, verbose=False)
    dm, model = build(compose([*overrides, *TINY, "dataset.n=2000"]))
    model.finite_check = "deferred"
    gan = hasattr(model, "critic")
    owner, attr = (model.loss, "critic_loss") if gan else (model, "terms")
    original, calls, before = getattr(owner, attr), [0], {}

    def poisoned(*args, **kwargs):  # the loss of call `fail_call` is NaN; the state before it is kept
        out = original(*args, **kwargs)
        if calls[0] == fail_call:
            before["weights"] = copy.deepcopy(model.state_dict())
            before["opts"] = [copy.deepcopy(o.state_dict()) for o in model._opts]
            before["step"] = model.global_step
            out = (out[0] * float("nan"), *out[1:])
        calls[0] += 1
        return out

    setattr(owner, attr, poisoned)
    t = trainer(tmp_path, steps=100)
    with pytest.raises(Diverged, match=rf"{'loss_d' if gan else 'loss'} became nan at step {before.get('step', '')}"):
        t.fit(model, datamodule=dm)
    assert Diverged.exit_code == 4
    # Found at the next logging step (the steps s with s % EVERY == 0 log, then global_step is s + 1).
    assert before["step"] < model.global_step <= -(-before["step"] // EVERY) * EVERY + 1
    if before["step"] % EVERY:  # training went on after the NaN, the updates did not
        assert calls[0] > fail_call + 1
    after = model.state_dict()
    assert all(torch.equal(before["weights"][k], after[k]) for k in after if not k.startswith("generator_ema"))
    for saved, opt in zip(before["opts"], model._opts, strict=True):
        now = opt.state_dict()
        assert saved["state"].keys() == now["state"].keys()
        for k, state in saved["state"].items():
            assert state.keys() == now["state"][k].keys()
            assert all(torch.equal(torch.as_tensor(v), torch.as_tensor(now["state"][k][n])) for n, v in state.items())


def test_the_deferred_path_trains_as_the_per_step_one_when_losses_are_finite(tmp_path):
    runs = []
    for mode in ("step", "deferred"):
        L.seed_everything(0, verbose=False)
        dm, model = build(compose(["model=wgan_gp", "model.critic_steps=2", "optimizer=rmsprop", *TINY]))
        model.finite_check = mode
        trainer(tmp_path, steps=6).fit(model, datamodule=dm)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


READS = ("__bool__", "__float__", "__int__", "__index__", "item", "tolist", "numpy", "cpu")


@pytest.mark.parametrize("overrides", [
    ["model=wgan_gp", "dataset=tpc", "model.critic_steps=2", "model.critic.dropout=0.5"],  # the TPC critic
    ["model=gan"], ["model=lsgan"], ["model=cramer_gan"], ["model=vae"], ["model=nice"],
])
def test_no_training_step_reads_a_tensor_on_the_host_between_logging_steps(tmp_path, monkeypatch, overrides):
    """What would synchronise with a GPU: gentwin code converting a tensor to a Python value."""
    L.seed_everything(0, verbose=False)
    dm, model = build(compose([*overrides, *TINY, "dataset.n=600"]))
    model.finite_check = "deferred"
    monkeypatch.setattr(SparseDropout, "sparse", False)
    src, active, reads = str(Path(gentwin.__file__).parent), [False], []

    def counting(name, original):
        def counted(self, *a, **k):
            frame = sys._getframe(1)
            if active[0] and frame.f_code.co_filename.startswith(src):
                reads.append((name, frame.f_code.co_filename, frame.f_lineno))
            return original(self, *a, **k)
        return counted

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counting(name, getattr(torch.Tensor, name)))
    step, logged = type(model).training_step, []

    def watched(self, batch, batch_idx):
        active[0] = self.global_step % EVERY != 0  # this step does not log
        logged.append(not active[0])
        try:
            return step(self, batch, batch_idx)
        finally:
            active[0] = False

    monkeypatch.setattr(type(model), "training_step", watched)
    trainer(tmp_path, steps=9).fit(model, datamodule=dm)
    assert logged.count(False) >= 6 and reads == []


def test_a_run_with_the_deferred_check_ends_with_exit_4_and_one_line(tmp_path):
    out = cli("run", *TINY, "dataset.n=400", "trainer.log_every_n_steps=3", "model=vae", "optimizer=sgd",
              "optimizer.lr=1e30", "+model.finite_check=deferred", cwd=tmp_path)
    assert out.returncode == 4, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: loss became "), out.stderr[-3000:]
    assert "training stopped before the update (found at step" in lines[0]


def test_a_refused_first_step_keeps_a_loaded_optimizer_state_and_a_second_check_undoes_nothing_twice():
    from gentwin.models.guard import DeferredCheck

    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=0.1)
    (w**2).sum().backward()
    opt.step()  # a state as a resumed run loads it: step 1, moments
    saved = copy.deepcopy(opt.state_dict())
    guard = DeferredCheck(torch.device("cpu"), [opt])

    def backward():
        opt.zero_grad(set_to_none=True)
        (w.sum() * float("nan")).backward()

    guard.step(0, opt, torch.tensor(float("nan")), "loss", 7, backward, opt.step)
    for _ in range(2):  # the second check must not take the step counter back again
        with pytest.raises(Diverged, match="loss became nan at step 7"):
            guard.check([opt], 10, 8)
        state, want = opt.state_dict()["state"][0], saved["state"][0]
        assert all(torch.equal(torch.as_tensor(state[k]), torch.as_tensor(want[k])) for k in want)
