"""Does torch.compile (inductor, CPU) speed up the TPC baseline's critic step with its gradient penalty?

``autograd.grad(create_graph=True)`` (the penalty's double backward) does not compile, so the step is
written with torch.func: the gradient over the parameters of a loss that holds the gradient over the
inputs, which dynamo traces into one graph. Dropout is ``F.dropout`` (the same distribution as
``SparseDropout``, whose host-side loop would break the graph). Prints ms per critic step: the
benchmark's eager step (``bench_tpc_step.critic_step``), the same step in torch.func, eager and compiled.

    python scripts/bench_tpc_compile.py [threads]
"""

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
from torch.func import functional_call, grad  # noqa: E402

from bench_tpc_step import build, critic_step  # noqa: E402
from gentwin.domains.tpc.nets import SparseDropout  # noqa: E402

model, x, c, opt = build(32)
model.train()
critic = model.critic
for m in critic.modules():
    if isinstance(m, SparseDropout):
        m.sparse = False
names = [n for n, _ in critic.named_parameters()]
params = list(critic.parameters())

def D(p, xx, cc):
    return functional_call(critic, dict(zip(names, p, strict=True)), (xx, cc))

def loss_fn(p, real, fake, cc, eps):
    d_real = D(p, real, cc).mean()
    d_fake = D(p, fake, cc).mean()
    xh = eps * real + (1 - eps) * fake
    g = grad(lambda xx: D(p, xx, cc).sum())(xh)
    gp = ((g.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
    return d_fake - d_real + 10 * gp

gfn = grad(loss_fn)

def step(fn):
    with torch.no_grad():
        fake = model.generate(len(x), c)
    eps = torch.rand(len(x), 1, 1, device=x.device)
    gs = fn(tuple(p.detach() for p in params), x, fake, c, eps)
    for p, g in zip(params, gs, strict=True):
        p.grad = g
    opt.step()

def timeit(f, steps=100, repeats=3):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            f()
        out.append((time.perf_counter() - t) / steps * 1e3)
    return statistics.median(out)

for _ in range(10):
    critic_step(model, x, c, opt)
print(f"eager (the benchmark's step): {timeit(lambda: critic_step(model, x, c, opt)):.1f} ms", flush=True)
for _ in range(5):
    step(gfn)
print(f"eager torch.func step: {timeit(lambda: step(gfn)):.1f} ms", flush=True)
t = time.perf_counter()
cfn = torch.compile(gfn, dynamic=False)
step(cfn)
print(f"compile: {time.perf_counter() - t:.0f} s", flush=True)
for _ in range(5):
    step(cfn)
print(f"compiled torch.func step: {timeit(lambda: step(cfn)):.1f} ms", flush=True)
