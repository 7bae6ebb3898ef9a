"""Lightning's cost per training step against a plain PyTorch loop doing the same steps.

Same model (gentwin's GAN module with its nets and loss), same pre-sliced in-memory batches, same
optimizers; the plain loop calls the loss functions and steps the optimizers by hand. WGAN-GP with
8 critic steps at batch 32 is the hard case: many small optimizer steps per training step.

    python scripts/bench_overhead.py [--steps 300] [--repeats 5] [--threads 1] [--dataset tpc]
    python scripts/bench_overhead.py --profile 20 --experiment tpc_baseline

Prints seconds per generator step for both loops and their ratio (median over repeats, the two
loops interleaved so that machine load hits both alike).

``--profile N`` instead counts the operators of N Lightning training steps run as on an accelerator
(``finite_check="deferred"``, ``SparseDropout`` as ``F.dropout``, the optimizer's fused
``foreach`` implementation, torch's default for CUDA tensors), once with ``--critic-steps`` and
once with one critic step, and prints them per critic and per generator update: the backend ATen
operators that launch a kernel (a ``TorchDispatchMode`` sees each once, backward passes included;
views and allocations left out; a fused ``_foreach_`` operator counts once, as on a GPU), which is
what bounds a launch-bound GPU step, and the host reads (``aten::_local_scalar_dense``: ``.item()``,
``float(tensor)``), each a device synchronisation there. ``torch.profiler``'s leaf operators count
the CPU kernels' insides instead (mkldnn's copies and strides), several times more.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_tpc_step import critic_step  # noqa: E402  (scripts/ is on the path of a script run from it)
from conftest import compose  # noqa: E402
from gentwin.training.fit import _quiet, build  # noqa: E402


def make(args, critic_steps: int | None = None, extra: tuple[str, ...] = ()):
    overrides = [f"model={args.model}", f"dataset={args.dataset}", f"dataset.batch_size={args.batch}"]
    if args.experiment:
        overrides = [f"experiment={args.experiment}"]
    overrides += [f"model.critic_steps={critic_steps or args.critic_steps}", "threads=1", *extra]
    cfg = compose(overrides)
    L.seed_everything(0, verbose=False)
    return build(cfg)


def plain_loop(dm, model, steps: int) -> float:
    """The same training steps without Lightning: returns seconds per generator step."""
    opt_g, opt_d = (model.optimizer_factory(p) if lr is None else model.optimizer_factory(p, lr=lr)
                    for _, p, lr in model.param_groups())
    batches = dm.train_dataloader()
    done, t0 = 0, None
    while done < steps:
        for xs, cs in batches:
            if done == 10:
                t0 = time.perf_counter()  # after warm-up
            n = xs.shape[1]
            model.critic.requires_grad_(True)
            for i in range(model.critic_steps):
                x, c = xs[i], None if cs is None else cs[i]
                critic_step(model, x, c, opt_d)
            model.critic.requires_grad_(False)
            fakes = [model.generate(n, c) for _ in range(model.loss.n_fake)]
            loss_g, _ = model.loss.generator_loss(model.critic_fn, x, fakes, c)
            if not torch.isfinite(loss_g):
                raise RuntimeError("diverged")
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
            done += 1
            if done >= steps:
                break
    return (time.perf_counter() - t0) / (steps - 10)


class StepTimer(L.Callback):
    def __init__(self, warmup: int = 10):
        self.warmup, self.t0, self.n = warmup, None, 0

    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == self.warmup:
            self.t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, *args):
        self.t1, self.n = time.perf_counter(), trainer.global_step - self.warmup


def lightning_loop(dm, model, steps: int) -> float:
    timer = StepTimer()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                        num_sanity_val_steps=0, callbacks=[timer], max_epochs=-1)
    trainer.fit(model, datamodule=dm)
    return (timer.t1 - timer.t0) / timer.n


# Operators that launch no kernel on a GPU: views, metadata, allocation.
NO_KERNEL = {"empty", "empty_strided", "empty_like", "new_empty_strided", "_record_function_enter_new",
             "_record_function_exit", "view", "_unsafe_view", "_reshape_alias", "as_strided", "t", "transpose",
             "permute", "expand", "unsqueeze", "squeeze", "detach", "alias", "select", "slice", "unbind",
             "split", "split_with_sizes", "lift_fresh", "unflatten", "set_", "_local_scalar_dense", "is_nonzero"}


class OpCounter:
    """Counts the backend operators run while active (a ``TorchDispatchMode``: below autograd, so the
    backward passes count, and each operator once however its CPU kernel is built)."""

    def __init__(self):
        from collections import Counter

        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                name = func.overloadpacket.__name__
                if name == "_local_scalar_dense":
                    counter.reads += 1
                elif name not in NO_KERNEL:
                    counter.launches[name] += 1
                return func(*args, **(kwargs or {}))

        self.mode, self.launches, self.reads = Mode(), Counter(), 0


class Window(L.Callback):
    """Counts the operators of ``n`` training steps after ``warmup`` ones."""

    def __init__(self, counter: OpCounter, warmup: int, n: int):
        self.counter, self.warmup, self.n = counter, warmup, n

    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == self.warmup:
            self.counter.mode.__enter__()

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.warmup + self.n:
            self.counter.mode.__exit__(None, None, None)


def profile(args) -> None:
    """Counts the operators of ``args.profile`` training steps (see the module docstring)."""
    from gentwin.domains.tpc.nets import SparseDropout

    SparseDropout.sparse = False  # as off the CPU
    counts = {}
    for k in sorted({args.critic_steps, 1}):
        dm, model = make(args, k, ("++optimizer.foreach=true",))  # torch's choice on a GPU
        model.finite_check = args.finite_check
        counter = OpCounter()
        trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=5 + args.profile, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, num_sanity_val_steps=0, max_epochs=-1,
                            callbacks=[Window(counter, 5, args.profile)], log_every_n_steps=10_000)
        trainer.fit(model, datamodule=dm)
        counts[k] = (sum(counter.launches.values()) / args.profile, counter.reads / args.profile,
                     counter.launches)
    name = args.experiment or f"{args.model} on {args.dataset}"
    print(f"{name}: operators per training step, mean of {args.profile} steps "
          f"({args.finite_check} finite check)")
    for k, (launches, reads, _) in counts.items():
        print(f"  {k} critic step(s): {launches:7.1f} kernel-launching operators, {reads:.2f} host reads")
    if len(counts) == 2:
        n = args.critic_steps
        critic = (counts[n][0] - counts[1][0]) / (n - 1)
        print(f"  one critic update: {critic:.1f}; generator update and the rest: {counts[1][0] - critic:.1f}")
    print(f"  by operator ({args.critic_steps} critic steps): "
          + ", ".join(f"{k} {v / args.profile:g}" for k, v in counts[args.critic_steps][2].most_common()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="wgan_gp")
    p.add_argument("--dataset", default="gaussian2d")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--critic-steps", type=int, default=8)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--experiment", default=None, help="a preset (experiment=...) instead of --model/--dataset")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="count operators of N steps instead")
    p.add_argument("--finite-check", default="deferred", choices=["step", "deferred"], help="with --profile")
    args = p.parse_args()
    _quiet()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile(args)
        return
    plain, light = [], []
    for _ in range(args.repeats):
        dm, model = make(args)
        plain.append(plain_loop(dm, model, args.steps))
        dm, model = make(args)
        light.append(lightning_loop(dm, model, args.steps))
    mp, ml = statistics.median(plain), statistics.median(light)
    print(f"{args.model} on {args.dataset}, batch {args.batch}, {args.critic_steps} critic steps, "
          f"{args.steps} steps x {args.repeats} repeats, {args.threads} thread(s)")
    print(f"plain PyTorch : {mp * 1e3:8.3f} ms/step   (repeats: {', '.join(f'{t * 1e3:.3f}' for t in plain)})")
    print(f"Lightning     : {ml * 1e3:8.3f} ms/step   (repeats: {', '.join(f'{t * 1e3:.3f}' for t in light)})")
    print(f"ratio         : {ml / mp:8.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
