"""Two processes on gloo train exactly as one process on the combined batch (DDP and FSDP2).

One torchrun launch (tests/distributed_worker.py) trains with both strategies; the one-process
reference runs here, with the worker's own functions.
"""

import os
from pathlib import Path

import distributed_worker as worker  # tests/ is on the path: pytest puts a test file's folder there
import pytest
import torch

from tinysora import distributed


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Rank 0's records of the two-process runs, loaded as data (weights_only)."""
    out = tmp_path_factory.mktemp("two")
    here = str(Path(__file__).parent)
    path = os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))
    distributed.torchrun(["distributed_worker", str(out)], 2, env={"OMP_NUM_THREADS": "1", "PYTHONPATH": path},
                         timeout=300)
    return {name: torch.load(out / f"{name}.pt", weights_only=True) for name in ("ddp", "fsdp", "half")}


@pytest.fixture(scope="module")
def single():
    """One process, four steps, drawing both shards of every batch."""
    torch.set_num_threads(1)
    return worker.run(distributed.Distributed(), "none", 4)


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_equal_one_on_the_combined_batch(strategy, two, single):
    for got, expected in zip(two[strategy]["grads"], single["grads"]):     # gloo's averaging checked too
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    for name, value in single["model"].items():
        torch.testing.assert_close(two[strategy]["model"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_fsdp_holds_half_the_training_state_of_ddp(two, single):
    # fp32 AdamW: 16 bytes a parameter (4 parameter, 4 gradient, 8 moments) on every DDP rank
    params = sum(v.numel() for v in single["model"].values())
    assert sum(two["ddp"]["bytes"].values()) == 16 * params
    # FSDP2 splits each parameter's rows between the ranks; rank 0 holds the first ceil(rows / 2)
    shard = sum(-(-v.shape[0] // 2) * v[0].numel() for v in single["model"].values())
    assert sum(two["fsdp"]["bytes"].values()) == 16 * shard
    assert shard < 0.55 * params


def test_a_checkpoint_from_two_processes_resumes_in_one(two, single):
    resumed = worker.run(distributed.Distributed(), "none", 4, resume=two["half"])
    for name, value in single["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_a_partial_launch_names_the_missing_variables(monkeypatch):
    for name in distributed.RENDEZVOUS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="missing LOCAL_RANK, MASTER_ADDR, MASTER_PORT.*torchrun"):
        distributed.init_distributed("cpu")


def test_no_launch_is_one_process(monkeypatch):
    for name in distributed.RENDEZVOUS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    ctx = distributed.init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap_model(model, ctx, "fsdp") is model


def test_batches_and_strategies_are_checked():
    ctx = distributed.Distributed(rank=0, world_size=3)
    assert distributed.shard_of(12, ctx) == 4
    with pytest.raises(ValueError, match="global batch 10 does not divide between 3 processes"):
        distributed.shard_of(10, ctx)
    with pytest.raises(ValueError, match="unknown strategy 'zero'"):
        distributed.wrap_model(torch.nn.Linear(2, 2), ctx, "zero")
    with pytest.raises(ValueError, match="shard 2 is not in 0..1"):
        distributed.shard_generator(0, 0, 2, 2)


def test_shard_streams_differ_between_ranks_and_steps():
    draws = [tuple(torch.randn(3, generator=distributed.shard_generator(1, step, shard, 2)).tolist())
             for step in range(2) for shard in range(2)]
    assert len(set(draws)) == 4


def test_bf16_autocast_matches_fp32_within_bf16_precision():
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(64, 64), torch.randn(32, 64)
    with distributed.autocast("cpu", enabled=True):
        low = layer(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), layer(x), rtol=2e-2, atol=2e-2)
