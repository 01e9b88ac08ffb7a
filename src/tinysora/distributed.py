"""Training on several processes with PyTorch's own stack: torchrun, DDP and FSDP2 (chapter 18).

A map of the module:

* :func:`init_distributed` reads what ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``, ``MASTER_PORT``) and starts a process group: NCCL on CUDA, gloo on a CPU. With none
  of them set it is one process, and nothing is started. It returns a :class:`Distributed`.
* :func:`shard_of` splits a global batch between the ranks (the world size must divide it), and
  :func:`shard_generator` gives each rank its own stream of procedural data, so that rank ``r``'s
  share at step ``s`` is the same whoever draws it.
* :func:`wrap_model` applies a strategy: ``"ddp"`` (DistributedDataParallel: every rank holds the
  whole model and optimizer; gradients are averaged in backward) or ``"fsdp"`` (FSDP2's
  ``fully_shard`` per block, then the root: each rank holds ``1/N`` of the parameters, gradients and
  optimizer state, as ZeRO stage 3 does).
* :func:`full_state_dict` gathers a plain state dict (no DTensors, no ``module.`` prefix) so that a
  checkpoint written by ``N`` processes loads in any other number, and :func:`state_bytes` measures
  what a rank holds.
* :func:`autocast` is bf16 mixed precision on CPU and CUDA (no gradient scaler: bf16 keeps fp32's
  exponent range).
* :func:`torchrun` launches a module on this machine's loopback with N processes (for notebooks and
  tests; on a cluster, call ``torchrun`` itself).

Launch::

    torchrun --standalone --nproc_per_node=2 -m tinysora.sora train --scale smoke --strategy ddp
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterable

import torch
import torch.distributed as dist
import torch.nn as nn

RENDEZVOUS_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
STRATEGIES = ("none", "ddp", "fsdp")


@dataclass(frozen=True)
class Distributed:
    """Where this process stands: its rank among ``world_size``, its device and backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None          # None: one process, no process group

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and the report."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.backend is not None


def init_distributed(device: str | torch.device | None = None) -> Distributed:
    """Start the process group that ``torchrun`` describes in the environment (or none).

    ``device``: ``"cpu"``, ``"cuda"`` or None (CUDA when available). Under torchrun each rank takes
    ``cuda:LOCAL_RANK`` and NCCL; on a CPU, gloo. A launch with some rendezvous variables but not all
    stops with a message naming the missing ones.
    """
    present = [name for name in RENDEZVOUS_VARIABLES if name in os.environ]
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    wanted = torch.device(device)
    if not present or (present == ["WORLD_SIZE"] and os.environ["WORLD_SIZE"] == "1"):
        return Distributed(device=wanted)
    missing = [name for name in RENDEZVOUS_VARIABLES if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"distributed launch is missing {', '.join(missing)} (set: {', '.join(present)}); "
            "start several processes with torchrun, e.g. "
            "`torchrun --standalone --nproc_per_node=2 -m tinysora.sora train ...`")
    rank, world, local = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if not 0 <= rank < world:
        raise RuntimeError(f"RANK={rank} is not in 0..WORLD_SIZE-1={world - 1}")
    if wanted.type == "cuda":
        if local >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={local} but this machine has {torch.cuda.device_count()} CUDA devices")
        wanted, backend = torch.device("cuda", local), "nccl"
        torch.cuda.set_device(wanted)
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=world)
    return Distributed(rank=rank, world_size=world, local_rank=local, device=wanted, backend=backend)


def shutdown(ctx: Distributed) -> None:
    """End the process group (call once at the end of training on every rank)."""
    if ctx.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def shard_of(batch_size: int, ctx: Distributed) -> int:
    """This rank's share of a global batch; the world size must divide it."""
    if batch_size % ctx.world_size:
        raise ValueError(f"global batch {batch_size} does not divide between {ctx.world_size} processes; "
                         f"choose a batch that is a multiple of {ctx.world_size}")
    return batch_size // ctx.world_size


def shard_generator(seed: int, step: int, shard: int, shards: int) -> torch.Generator:
    """The random stream for shard ``shard`` of ``shards`` at ``step``: rank-aware procedural data.

    One process that draws every shard in turn sees exactly the data that ``shards`` processes see
    together, which is what makes one process on the combined batch a test of many.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not in 0..{shards - 1}")
    mixed = (seed * 1_000_003 + step) * 1_009 + shard * 7_919 + shards
    return torch.Generator().manual_seed(mixed % (2 ** 63))


def wrap_model(model: nn.Module, ctx: Distributed, strategy: str = "ddp",
               blocks: Iterable[nn.Module] | None = None) -> nn.Module:
    """Apply ``strategy`` (``"none"``, ``"ddp"`` or ``"fsdp"``) to a model already on ``ctx.device``.

    ``blocks``: the submodules FSDP shards one by one (default: ``model.blocks``), so that only one
    block's full parameters exist at a time in forward and backward. Build the optimizer after this
    call: with FSDP it must see the sharded parameters.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if strategy == "none" or not ctx.is_distributed:
        return model
    if strategy == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(ctx.device.type, (ctx.world_size,))
    blocks = list(model.blocks if blocks is None else blocks)
    if not blocks:
        raise ValueError("FSDP needs the blocks to shard: pass blocks= or give the model a .blocks list")
    for block in blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (FSDP2 shards in place, so it is its own model)."""
    return getattr(model, "module", model)


def full_state_dict(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> tuple[dict, dict]:
    """Complete model and optimizer state dicts on the CPU, the same whatever the strategy and world size.

    Keys are parameter names (no ``module.`` prefix), values plain tensors (FSDP's shards gathered), so
    a checkpoint written by ``N`` processes loads in any number with :func:`load_full_state_dict`.
    With FSDP every rank must call it.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(unwrap(model), [] if optimizer is None else [optimizer], options=options)


def load_full_state_dict(model: nn.Module, optimizer: torch.optim.Optimizer | None,
                         model_state: dict, optimizer_state: dict | None = None) -> None:
    """Load what :func:`full_state_dict` returned into a model (and optimizer) of any strategy."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
    set_state_dict(unwrap(model), [] if optimizer is None else [optimizer], model_state_dict=model_state,
                   optim_state_dict=optimizer_state or {}, options=options)


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict[str, int]:
    """Bytes this rank holds for parameters, gradients and optimizer state (its shards only)."""
    def nbytes(tensors) -> int:
        local = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]
        return sum(t.numel() * t.element_size() for t in local)

    params = list(unwrap(model).parameters())
    moments = [] if optimizer is None else [v for state in optimizer.state.values()
                                            for v in state.values() if torch.is_tensor(v) and v.dim() > 0]
    return {"parameters": nbytes(params), "gradients": nbytes(p.grad for p in params if p.grad is not None),
            "optimizer": nbytes(moments)}


def autocast(device: torch.device | str, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``enabled`` (matmuls in bf16, reductions kept in fp32)."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)


def torchrun(module_args: list[str], processes: int, *, env: dict | None = None, echo: bool = False,
             timeout: float | None = None) -> str:
    """Run ``python -m torch.distributed.run --nproc_per_node=processes -m <module_args>`` on 127.0.0.1.

    Returns everything the processes printed (``echo``: also shown as it arrives, progress bars
    included); a failed launch raises RuntimeError with the end of that output.
    """
    if not isinstance(processes, int) or processes < 1:
        raise ValueError(f"processes must be a positive int, got {processes!r}")
    with socket.socket() as probe:                         # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
               "--master_addr=127.0.0.1", f"--master_port={port}", "-m", *module_args]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    chunks = []
    try:
        for chunk in iter(lambda: process.stdout.read1(4096), b""):
            chunks.append(chunk.decode(errors="replace"))
            if echo:
                sys.stdout.write(chunks[-1])
                sys.stdout.flush()
        code = process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(chunks)
    if code:
        raise RuntimeError(f"torchrun {' '.join(module_args)} failed (exit {code}):\n" + output[-3000:])
    return output
