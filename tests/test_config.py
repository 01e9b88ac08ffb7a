import pytest
import torch

from tinysora import config
from tinysora.config import Scaled, current_scale


@pytest.mark.parametrize("scale", config.SCALES)
def test_scale_is_read_from_the_environment(monkeypatch, scale):
    monkeypatch.setenv(config.ENV_VAR, scale)
    assert current_scale() == scale


def test_unset_scale_follows_cuda(monkeypatch):
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    assert current_scale() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_scale_is_rejected_with_the_choices(monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, "huge")
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        current_scale()


def test_scaled_picks_the_sizes_of_a_scale():
    cfg = Scaled(smoke=dict(steps=2), cpu=dict(steps=20), gpu=dict(steps=200))
    assert cfg.pick("smoke").steps == 2 and cfg.pick("gpu").steps == 200
    assert cfg.pick("cpu").scale == "cpu"
    assert "steps" in cfg.table()


def test_scaled_requires_the_same_keys_at_every_scale():
    with pytest.raises(ValueError, match="missing"):
        Scaled(smoke=dict(steps=2), cpu=dict(steps=20, width=3), gpu=dict(steps=200))


def test_scaled_rejects_an_unknown_scale():
    with pytest.raises(ValueError, match="unknown scale"):
        Scaled(smoke={}, cpu={}, gpu={}).pick("tpu")
