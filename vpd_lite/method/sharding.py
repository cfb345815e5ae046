"""Data-parallel decomposition: ``Shard`` (this process's rank and the world size) and the collective sums, maxima and
gradient averages the training loop uses. Process-group start-up is in ``vpd_lite.commands.distributed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor


@dataclass(frozen=True)
class Shard:
    """This process's place in a data-parallel run: ``rank`` of ``world`` equally sized row blocks."""

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"need 0 <= rank < world, got rank={self.rank}, world={self.world}")

    @property
    def active(self) -> bool:
        """True when more than one process takes part (collectives are needed)."""
        return self.world > 1

    def local_rows(self, global_rows: int) -> slice:
        """The rows of a global batch of ``global_rows`` that this rank trains on."""
        if global_rows % self.world:
            raise ValueError(f"global batch of {global_rows} rows does not split into {self.world} equal shards")
        b = global_rows // self.world
        return slice(self.rank * b, (self.rank + 1) * b)


def sum_across_ranks(x: Tensor, shard: Shard) -> Tensor:
    """Differentiable all-reduce (sum) of ``x`` over the ranks; the identity for a single process."""
    if not shard.active:
        return x
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(x, op=dist.ReduceOp.SUM)


def max_across_ranks(x: Tensor, shard: Shard) -> Tensor:
    """The elementwise maximum of ``x`` over the ranks (not differentiable); ``x`` itself for one process.

    ``decompose`` uses it for the elapsed time of a run with a time budget: every rank then follows the same
    schedule and stops at the same step, even when one rank started late (each checking its own clock, one
    rank would stop and wait at a collective while the other went on: a hang)."""
    if not shard.active:
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.MAX)
    return y


def average_gradients(tensors: list[Tensor], shard: Shard) -> None:
    """Replace every ``t.grad`` by its mean over the ranks (one all-reduce over a flattened buffer).

    Tensors without a gradient on this rank contribute zeros, so all ranks run the same collective.
    """
    if not shard.active or not tensors:
        return
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in tensors]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= shard.world
    offset = 0
    for t, g in zip(tensors, grads):
        n = g.numel()
        t.grad = flat[offset: offset + n].view_as(t).clone()
        offset += n
