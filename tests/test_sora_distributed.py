"""The engine's trainer under torchrun: two processes on gloo train as one process on the combined batch.

Two launches of `python -m tinysora.sora train --scale smoke` (DDP stopped at step 20, FSDP to the end)
are compared with the same training in this process, drawing both data shards of every step.
"""

from types import SimpleNamespace

import pytest
import torch

from tinysora.distributed import Distributed, torchrun
from tinysora.sora import TinySora
from tinysora.sora.train import (
    SORA_CONFIG,
    build_latent_pool,
    my_shards,
    read_checkpoint,
    train_dit,
    train_video_autoencoder,
)


def train_smoke(out, *args) -> None:
    torchrun(["tinysora.sora", "train", "--scale", "smoke", "--out", str(out), "--train-only", *args], 2,
             env={"OMP_NUM_THREADS": "1", "TINYSORA_BATCH": "1"}, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchrun")
    train_smoke(out / "ddp", "--strategy", "ddp", "--stop-at", "20")
    train_smoke(out / "fsdp", "--strategy", "fsdp")
    return out


@pytest.fixture(scope="module")
def pool():
    torch.set_num_threads(1)                      # as torchrun's processes: the same autoencoder, bit for bit
    cfg = SORA_CONFIG.pick("smoke")
    ae, _ = train_video_autoencoder(cfg)
    return cfg, ae, build_latent_pool(cfg, ae)


def assert_same_weights(checkpoint: dict, state, atol: float) -> None:
    for name, value in state.module.state_dict().items():
        torch.testing.assert_close(checkpoint["model"][name], value, rtol=0, atol=atol, msg=name)
    for name, value in state.ema.state_dict().items():
        torch.testing.assert_close(checkpoint["ema"][name], value, rtol=0, atol=atol, msg=name)


def test_ddp_on_two_processes_equals_one_process_on_both_shards(runs, pool):
    cfg, _, latents = pool
    one = train_dit(cfg, latents, data_shards=2, stop_at=20)
    two = read_checkpoint(runs / "ddp" / "checkpoint.pt")
    assert two["step"] == 20 and two["data_shards"] == 2
    assert_same_weights(two, one, atol=1e-6)
    assert two["losses"] == pytest.approx(one.losses, abs=1e-5)      # logged: the mean over both ranks


def test_fsdp_on_two_processes_equals_one_process_on_both_shards(runs, pool):
    cfg, _, latents = pool
    one = train_dit(cfg, latents, data_shards=2)
    assert_same_weights(read_checkpoint(runs / "fsdp" / "checkpoint.pt"), one, atol=1e-5)


def test_a_two_process_checkpoint_resumes_in_one_process(runs, pool, tmp_path):
    cfg, ae, latents = pool
    path = tmp_path / "checkpoint.pt"
    path.write_bytes((runs / "ddp" / "checkpoint.pt").read_bytes())
    resumed = train_dit(cfg, latents, checkpoint=str(path), ae=ae)        # steps 20 .. 29 in one process
    straight = train_dit(cfg, latents, data_shards=2)
    assert resumed.step == cfg.steps and resumed.data_shards == 2
    for name, value in straight.module.state_dict().items():
        torch.testing.assert_close(resumed.module.state_dict()[name], value, rtol=0, atol=1e-6, msg=name)
    TinySora.from_checkpoint(str(path))                                # and it loads for sampling


def test_a_checkpoint_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "stranger.pt"
    torch.save({"model": {}, "config": SimpleNamespace(frames=8)}, path)
    with pytest.raises(ValueError, match="pickled Python objects.*refusing"):
        read_checkpoint(str(path))
    with pytest.raises(ValueError, match="pickled Python objects"):
        TinySora.from_checkpoint(str(path))


def test_launches_that_cannot_share_the_data_stop_with_a_message(pool):
    cfg, _, latents = pool
    with pytest.raises(ValueError, match="batch 16 does not divide into 3 data shards"):
        train_dit(cfg, latents, data_shards=3, stop_at=1)
    with pytest.raises(ValueError, match="3 data shards, which do not divide between 2 processes"):
        my_shards(3, Distributed(world_size=2))
    assert list(my_shards(4, Distributed(rank=1, world_size=2))) == [2, 3]
