"""Launched by tests/test_distributed.py under torchrun: a few AdamW steps of a small model.

    PYTHONPATH=tests torchrun --nproc_per_node=2 -m distributed_worker OUT_DIR

Each rank trains on its shard of every step's global batch, four steps with DDP and four with FSDP;
rank 0 saves the model, the optimizer, the first step's gradients (gathered) and the bytes a rank
holds to OUT_DIR/{ddp,fsdp}.pt, and a checkpoint after two DDP steps to OUT_DIR/half.pt. The test
runs the one-process reference in its own process with the same functions.
"""

import sys
from pathlib import Path

import torch
import torch.nn as nn

from tinysora import distributed

GLOBAL_BATCH, DIM = 8, 6


class Blocks(nn.Module):
    """Two residual MLP blocks and a head: enough structure for FSDP to shard per block."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(DIM, 2 * DIM), nn.GELU(), nn.Linear(2 * DIM, DIM))
                                    for _ in range(2))
        self.head = nn.Linear(DIM, 1)

    def forward(self, x):
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)


def make_model_and_optimizer(ctx, strategy):
    torch.manual_seed(0)
    model = distributed.wrap_model(Blocks().to(ctx.device), ctx, strategy)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-2)


def shard_batch(step, shard, shards):
    generator = distributed.shard_generator(7, step, shard, shards)
    x = torch.randn(GLOBAL_BATCH // shards, DIM, generator=generator)
    return x, x.sum(dim=1, keepdim=True).sin()


def train(model, optimizer, ctx, steps, start=0, shards_per_rank=1):
    """Steps ``start .. steps-1``; a rank draws ``shards_per_rank`` consecutive shards of each batch."""
    first_grads = None
    shards = ctx.world_size * shards_per_rank
    for step in range(start, steps):
        parts = [shard_batch(step, ctx.rank * shards_per_rank + i, shards) for i in range(shards_per_rank)]
        x, y = (torch.cat(tensors) for tensors in zip(*parts))
        loss = ((model(x) - y) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        if first_grads is None:
            first_grads = [p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad.clone()
                           for p in model.parameters()]
        optimizer.step()
    return first_grads


def run(ctx, strategy, steps, resume=None):
    """Train ``steps`` steps (continuing from a ``resume`` checkpoint) and return what rank 0 saves."""
    model, optimizer = make_model_and_optimizer(ctx, strategy)
    start = 0
    if resume is not None:
        distributed.load_full_state_dict(model, optimizer, resume["model"], resume["optimizer"])
        start = resume["step"]
    grads = train(model, optimizer, ctx, steps, start, shards_per_rank=2 // ctx.world_size)
    model_state, optimizer_state = distributed.full_state_dict(model, optimizer)
    return {"model": model_state, "optimizer": optimizer_state, "step": steps, "grads": grads,
            "bytes": distributed.state_bytes(model, optimizer)}


def main():
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    ctx = distributed.init_distributed("cpu")
    for name, strategy, steps in [("ddp", "ddp", 4), ("fsdp", "fsdp", 4), ("half", "ddp", 2)]:
        state = run(ctx, strategy, steps)
        if ctx.is_main:
            torch.save(state, out / f"{name}.pt")
    distributed.shutdown(ctx)


if __name__ == "__main__":
    main()
