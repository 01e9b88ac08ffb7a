import numpy as np
import pytest
import torch

from tinysora.runtime import describe_runtime, pick_device, progress, seed_everything


def test_seed_everything_repeats_every_generator():
    seed_everything(3)
    first = (np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (np.random.rand(), torch.rand(1).item()) == first


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_seed_everything_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)


def test_pick_device_defaults_to_what_is_available():
    assert pick_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_says_so():
    with pytest.raises(ValueError, match="no CUDA"):
        pick_device("cuda")


def test_progress_yields_every_item():
    assert list(progress(range(5), desc="test")) == list(range(5))


def test_banner_names_scale_and_device(capsys, monkeypatch):
    monkeypatch.setenv("TINYSORA_SCALE", "cpu")
    scale, device = describe_runtime()
    out = capsys.readouterr().out
    assert scale == "cpu" and str(device) in out and "TINYSORA_SCALE" in out
    if device.type == "cpu":
        assert "Change runtime type" in out
