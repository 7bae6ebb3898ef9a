"""Lightning's cost per training step against a plain PyTorch loop doing the same steps.

Same model (gentwin's GAN module with its nets and loss), same pre-sliced in-memory batches, same
optimizers; the plain loop calls the loss functions and steps the optimizers by hand. WGAN-GP with
8 critic steps at batch 32 is the hard case: many small optimizer steps per training step.

    python scripts/bench_overhead.py [--steps 300] [--repeats 5] [--threads 1] [--dataset tpc]

Prints seconds per generator step for both loops and their ratio (median over repeats, the two
loops interleaved so that machine load hits both alike).
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
from conftest import compose  # noqa: E402
from gentwin.run import _quiet, build  # noqa: E402


def make(args):
    overrides = [f"model={args.model}", f"dataset={args.dataset}", f"dataset.batch_size={args.batch}",
                 f"model.critic_steps={args.critic_steps}", "threads=1"]
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
                with torch.no_grad():
                    fakes = [model.generate(n, c) for _ in range(model.loss.n_fake)]
                loss_d, _ = model.loss.critic_loss(model.critic_fn, x, fakes, c)
                if not torch.isfinite(loss_d):
                    raise RuntimeError("diverged")
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                opt_d.step()
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="wgan_gp")
    p.add_argument("--dataset", default="gaussian2d")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--critic-steps", type=int, default=8)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    _quiet()
    torch.set_num_threads(args.threads)
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
    print(f"ratio         : {ml / mp:8.3f}  (target <= 1.10)")


if __name__ == "__main__":
    main()
