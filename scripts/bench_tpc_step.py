"""The TPC baseline's critic step against its arithmetic bound, on 1 and 2 threads.

One critic step of the baseline (Malchenko et al. 2022 (TPC fast simulation) §4.3.3): a generated
batch under ``no_grad``, the Wasserstein loss on real and generated responses, the gradient penalty
(its double backward included), ``zero_grad``, backward and an RMSprop step. Batch 32, 8 x 16
responses, 5 conditions, the convolutional critic of ``gentwin.domains.tpc.nets``.

The bound: the step's floating-point operations, counted by ``torch.utils.flop_counter`` on the
step itself (convolutions, matrix products and their backward passes; element-wise work is left
out, so the bound is optimistic), divided by the machine's own rate on one large matrix product
with the same number of threads (``--gemm``, 1024 x 1024 fp32). The ratio is time / bound.

    python scripts/bench_tpc_step.py [--threads 1,2] [--steps 200] [--repeats 5] [--kernels] [--ranks 2]

Prints, per thread count: ms per critic step (median of repeats), achieved GFLOP/s, the GEMM rate,
the bound and the ratio; then the speed-up of the largest thread count over one thread.

``--kernels`` also records the step's convolutions and matrix products with their own inputs and
replays each call alone (best of 20), summed: the step's time if nothing but those kernels ran (no
Python, autograd or element-wise work), printed against the same bound. A rewrite that keeps
PyTorch's kernels cannot bring the step below that floor.

``--ranks N`` also times the other way to use N cores, data parallelism (``trainer=ddp``): N
processes of one thread each, every rank a critic step on its own batch, the critic's gradients
averaged over the ranks by one gloo all-reduce per step (as DDP does, without its bucketing and
overlap) before the RMSprop step. Printed: ms per step and samples per second, at ``--batch`` per
rank (a global batch of N x batch: a larger-batch setting) and at batch / N per rank (the global
batch of the baseline), each against the samples per second of one thread at ``--batch``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def build(batch: int):
    """The baseline GAN (untrained) and a fixed real batch of simulated responses in model space."""
    from conftest import compose
    from gentwin.training.fit import _quiet, build

    _quiet()
    n = max(2000, 12 * batch)  # 8 batches per step from the 75 % training split
    cfg = compose(["experiment=tpc_baseline", f"dataset.n={n}", f"dataset.batch_size={batch}", "threads=1"])
    torch.manual_seed(0)
    dm, model = build(cfg)
    xs, cs = next(iter(dm.train_dataloader()))
    opt = model.optimizer_factory(list(model.critic.parameters()))
    return model, xs[0], cs[0], opt


def critic_step(model, x, c, opt) -> None:
    """What ``GAN.training_step`` does per critic update (the finiteness check included)."""
    with torch.no_grad():
        fakes = [model.generate(len(x), c) for _ in range(model.loss.n_fake)]
    loss, _ = model.loss.critic_loss(model.critic_fn, x, fakes, c)
    if not torch.isfinite(loss):
        raise RuntimeError("diverged")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


class FlopCount(TorchDispatchMode):
    """Floating-point operations of the aten calls inside, by ``torch.utils.flop_counter``'s formulas.

    ``FlopCounterMode`` itself tracks modules with hooks that ``autograd.grad`` (the penalty) refuses.
    """

    def __init__(self, record: bool = False):
        super().__init__()
        self.flops = 0
        self.record = record
        self.calls: list[tuple] = []  # (func, args, kwargs, flops) of the counted calls, when recording

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            flops = formula(*args, **kwargs, out_val=out)
            self.flops += flops
            if self.record:
                copy = lambda a: a.clone(memory_format=torch.preserve_format) if isinstance(a, torch.Tensor) else a
                self.calls.append((func, tree_map(copy, args), tree_map(copy, kwargs), flops))
        return out


def step_flops(model, x, c, opt) -> int:
    with FlopCount() as counter:
        critic_step(model, x, c, opt)
    return counter.flops


def kernel_floor(model, x, c, opt, threads: int, repeats: int = 20) -> tuple[float, list[tuple[str, int, float]]]:
    """The step's counted kernels alone: every convolution and matrix product of one step, recorded
    with its own inputs and replayed in isolation (best of ``repeats``), summed. No Python, no
    autograd, no element-wise work: the time the step would take if only its arithmetic kernels ran.

    Returns the seconds and, per aten function, (name, calls, seconds).
    """
    torch.set_num_threads(threads)
    with FlopCount(record=True) as counter:
        critic_step(model, x, c, opt)
    total, per_op = 0.0, {}
    for func, args, kwargs, _ in counter.calls:
        for _ in range(3):
            func(*args, **kwargs)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            func(*args, **kwargs)
            best = min(best, time.perf_counter() - t0)
        total += best
        name = str(func._overloadpacket).removeprefix("aten.")
        n, t = per_op.get(name, (0, 0.0))
        per_op[name] = (n + 1, t + best)
    return total, [(k, n, t) for k, (n, t) in sorted(per_op.items(), key=lambda kv: -kv[1][1])]


def gemm_rate(threads: int, n: int = 1024, seconds: float = 1.0) -> float:
    """GFLOP/s of an ``n x n`` fp32 matrix product on ``threads`` threads (best of repeated calls)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def time_steps(model, x, c, opt, threads: int, steps: int, repeats: int) -> list[float]:
    torch.set_num_threads(threads)
    for _ in range(20):
        critic_step(model, x, c, opt)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            critic_step(model, x, c, opt)
        out.append((time.perf_counter() - t0) / steps)
    return out


def _rank(rank: int, world: int, batch: int, steps: int, repeats: int, store: str, out) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    model, x, c, opt = build(batch)
    model.train()
    params = list(model.critic.parameters())

    def step():
        with torch.no_grad():
            fakes = [model.generate(len(x), c) for _ in range(model.loss.n_fake)]
        loss, _ = model.loss.critic_loss(model.critic_fn, x, fakes, c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        flat = torch.cat([p.grad.flatten() for p in params])
        dist.all_reduce(flat)
        flat /= world
        i = 0
        for p in params:
            p.grad.copy_(flat[i:i + p.numel()].view_as(p))
            i += p.numel()
        opt.step()

    for _ in range(20):
        step()
    times = []
    for _ in range(repeats):
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times.append((time.perf_counter() - t0) / steps)
    if rank == 0:
        out.put(times)
    dist.destroy_process_group()


def time_ranks(world: int, batch: int, steps: int, repeats: int) -> list[float]:
    """Per-step times of ``world`` one-thread data-parallel processes at ``batch`` per rank (rank 0's)."""
    import tempfile

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        procs = [ctx.Process(target=_rank, args=(r, world, batch, steps, repeats, f"{tmp}/store", out))
                 for r in range(world)]
        for proc in procs:
            proc.start()
        times = out.get()
        for proc in procs:
            proc.join()
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="1,2", help="comma list of thread counts")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--kernels", action="store_true",
                   help="also time the step's convolutions and matrix products alone (the floor of any rewrite "
                        "that keeps these kernels)")
    p.add_argument("--ranks", type=int, default=0, help="also time this many one-thread data-parallel ranks")
    args = p.parse_args()
    model, x, c, opt = build(args.batch)
    model.train()
    flops = step_flops(model, x, c, opt)
    print(f"TPC baseline critic step: batch {args.batch}, {tuple(model.shape)} responses, "
          f"{model.cond_dim} conditions, {flops / 1e9:.3f} GFLOP (convolutions and matrix products, "
          f"forward, backward and the penalty's double backward)")
    print(f"{'threads':>7} {'ms/step':>8} {'GFLOP/s':>8} {'GEMM GFLOP/s':>13} {'bound ms':>9} {'ratio':>6}"
          "   repeats (ms)")
    results, peaks = {}, {}
    for threads in [int(t) for t in args.threads.split(",")]:
        times = time_steps(model, x, c, opt, threads, args.steps, args.repeats)
        t = statistics.median(times)
        peak = peaks[threads] = gemm_rate(threads)
        bound = flops / (peak * 1e9)
        results[threads] = t
        print(f"{threads:>7} {t * 1e3:8.2f} {flops / t / 1e9:8.1f} {peak:13.1f} {bound * 1e3:9.2f} "
              f"{t / bound:6.2f}   {', '.join(f'{s * 1e3:.2f}' for s in times)}")
    if 1 in results and len(results) > 1:
        most = max(results)
        print(f"speed-up of {most} threads over 1: {results[1] / results[most]:.2f}x")
    if args.kernels:
        print("\nthe step's convolutions and matrix products alone (each call replayed in isolation, summed):")
        print(f"{'threads':>7} {'ms':>8} {'GFLOP/s':>8} {'ratio to bound':>15} {'share of the step':>18}")
        breakdown = None
        for threads, peak in peaks.items():
            t_k, per_op = kernel_floor(model, x, c, opt, threads)
            breakdown = breakdown or per_op
            print(f"{threads:>7} {t_k * 1e3:8.2f} {flops / t_k / 1e9:8.1f} {t_k * peak * 1e9 / flops:15.2f} "
                  f"{t_k / results[threads]:18.0%}")
        print("  1 thread, by function: " + ", ".join(f"{name} {n} calls {t * 1e3:.2f} ms" for name, n, t in breakdown))
    if args.ranks > 1:
        print(f"\ndata parallel, {args.ranks} processes of 1 thread (gloo all-reduce of the critic's gradients):")
        print(f"{'per rank':>8} {'global':>6} {'ms/step':>8} {'samples/s':>10} {'speed-up over 1 thread':>23}")
        for per_rank in (args.batch, args.batch // args.ranks):
            t_dp = statistics.median(time_ranks(args.ranks, per_rank, args.steps, args.repeats))
            rate = args.ranks * per_rank / t_dp
            speed = f"{rate * results[1] / args.batch:22.2f}x" if 1 in results else f"{'(--threads 1 not run)':>23}"
            print(f"{per_rank:>8} {args.ranks * per_rank:>6} {t_dp * 1e3:8.2f} {rate:10.0f} {speed}")
        if 1 in results:
            print(f"(1 thread: {args.batch / results[1]:.0f} samples/s at batch {args.batch})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
