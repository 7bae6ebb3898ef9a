"""Refusing a non-finite loss without a host synchronisation per optimizer step (accelerators).

On the CPU, ``GenerativeModel.step`` reads the loss on the host (``loss.item()`` costs no device
synchronisation there) and raises ``Diverged`` before the backward pass. On a GPU that read would stall
the host until the device has caught up, every optimizer step (nine per step of the TPC baseline),
leaving the GPU idle while the host launches the next kernels. ``DeferredCheck`` makes the update
itself safe on the device instead and lets the host look only where it synchronises anyway (the
logging interval, validation, the end of an epoch or of the run).

Per optimizer step, on the device (no host read):

* ``ok = isfinite(loss) and every gradient is finite and no earlier step failed``;
* gradients are zeroed where not ``ok`` (``masked_fill_``, NaN-safe);
* the parameters and the optimizer's state tensors are copied before ``optimizer.step()`` and selected
  back after it, ``new * ok + old * (1 - ok)``: exact, since both are finite (zero gradients still move
  Adam's or RMSprop's running averages, so skipping the gradients alone would not be enough);
* the first failing step, its loss name and value are recorded in device tensors.

At a check (``check``), the host reads the record; after a failure it undoes what the device cannot:
a host-side step counter in the optimizer state (``state["step"]`` on the CPU, incremented by every
skipped ``step()`` call) is set back, and the state of an optimizer whose every step was skipped is
emptied (it is created lazily, inside the first ``step()``). Then it raises ``Diverged``.

So after a non-finite loss, no later update reaches the weights or the optimizer state either: they
stay those before the first failing step until the check stops the run. Not covered: the averaged
generator (``model.ema``) keeps averaging the unchanged generator until the check, and the
learning-rate schedules and ``global_step`` advance; no checkpoint is written in between (validation
checks first).

Data-parallel ranks (untested on GPUs) each keep their own record. Gradients are averaged over the
ranks during the backward pass, before the check, so a non-finite gradient on one rank is refused on
all of them; a non-finite loss with finite gradients would be refused on its own rank only (the
ranks' weights would then differ), and a ``Diverged`` raised on one rank only would leave the others
waiting in their next collective.
"""

from __future__ import annotations

import torch

from gentwin.errors import Diverged


class DeferredCheck:
    """Device-side refusal of non-finite updates, read on the host only at ``check``.

    Args:
        device: Where the losses and the parameters are.
        n_optimizers: How many optimizers the model steps (counted separately).
    """

    def __init__(self, device: torch.device, optimizers: list[torch.optim.Optimizer]):
        self.device = torch.device(device)
        n_optimizers = len(optimizers)
        # Optimizers whose state does not exist yet: their first step() creates it (a resumed run's
        # optimizers hold the loaded state, which a refused step must leave as it is).
        self.stateless = [not opt.state for opt in optimizers]
        self.failed_step = torch.full((), -1, dtype=torch.long, device=self.device)
        self.failed_name = torch.full((), -1, dtype=torch.long, device=self.device)
        self.failed_value = torch.zeros((), device=self.device)
        self.skipped = torch.zeros(n_optimizers, dtype=torch.long, device=self.device)
        self._one = torch.ones((), device=self.device)
        self.calls = [0] * n_optimizers  # host counts of step() calls
        self.names: list[str] = []
        self._snapshots: dict[int, list[torch.Tensor]] = {}

    def step(self, index: int, optimizer: torch.optim.Optimizer, loss: torch.Tensor, name: str,
             global_step: int, backward, update) -> None:
        """``backward()`` (zero the gradients, backpropagate ``loss``) then ``update()`` (the optimizer
        step, applied to the parameters and ``optimizer``'s state only if the loss and the gradients
        are finite and no earlier step failed)."""
        if name not in self.names:
            self.names.append(name)
        loss = loss.detach()
        backward()
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        ok = torch.isfinite(loss)
        if grads:
            # One fused kernel per dtype: sets bad to 1 if any gradient holds a NaN or inf.
            bad = torch.zeros((), device=self.device)
            torch._amp_foreach_non_finite_check_and_unscale_(grads, bad, self._one)
            ok &= bad == 0
        fresh = self.failed_step < 0
        first = fresh & ~ok
        ok &= fresh
        refused = ~ok
        self.failed_step.masked_fill_(first, global_step)
        self.failed_name.masked_fill_(first, self.names.index(name))
        self.failed_value.copy_(torch.where(first, loss.float(), self.failed_value))
        self.skipped[index] += refused
        self.calls[index] += 1
        for g in grads:
            g.masked_fill_(refused, 0.0)
        tensors = self._tensors(optimizer)
        snapshot = self._snapshot(index, tensors)
        update()
        keep = ok.to(tensors[0].dtype)
        torch._foreach_mul_(tensors, keep)
        torch._foreach_mul_(snapshot, 1 - keep)
        torch._foreach_add_(tensors, snapshot)

    def _tensors(self, optimizer) -> list[torch.Tensor]:
        """Parameters and floating state tensors on the device (not host step counters)."""
        out = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                out.append(p.data)
                for v in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(v) and v.device == p.device and v.is_floating_point() and v.dim() > 0:
                        out.append(v)
        return out

    def _snapshot(self, index: int, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        snap = self._snapshots.get(index)
        if snap is None or len(snap) != len(tensors) or any(
                s.shape != t.shape or s.dtype != t.dtype for s, t in zip(snap, tensors, strict=True)):
            snap = self._snapshots[index] = [torch.empty_like(t) for t in tensors]
        torch._foreach_copy_(snap, tensors)
        return snap

    def check(self, optimizers: list[torch.optim.Optimizer], steps_per_epoch: int, global_step: int) -> None:
        """Reads the record (a host synchronisation); after a failure, restores what the device could
        not and raises ``Diverged`` naming the first failing step.

        Raises:
            Diverged: a loss or gradient became NaN or infinite since the run started.
        """
        failed = int(self.failed_step)
        if failed < 0:
            return
        skipped = self.skipped.tolist()
        for i, opt in enumerate(optimizers):
            if skipped[i] and skipped[i] == self.calls[i] and self.stateless[i]:
                opt.state.clear()  # no step was taken: the state was created by a skipped one
                continue
            for state in opt.state.values():
                if "step" in state:  # a counter every step() call advances, skipped ones included
                    state["step"] -= skipped[i]
        self.skipped.zero_()  # restored once: a second check raises again without undoing twice
        self.calls = [c - k for c, k in zip(self.calls, skipped, strict=True)]
        name, value = self.names[int(self.failed_name)], float(self.failed_value)
        raise Diverged(
            f"{name} became {value} at step {failed} (epoch {failed // max(steps_per_epoch, 1)}); "
            f"training stopped before the update (found at step {global_step}: the weights and optimizer "
            f"state are those before step {failed})")
