"""LoRA and DoRA adapters: exact at initialisation, mergeable, and equal to peft's layers."""

import pytest
import torch
import torch.nn as nn

from tinysora.lora import LoRALinear, add_adapters, merge_adapters, trainable_parameters


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(12, 16), nn.GELU(), nn.Sequential(nn.Linear(16, 16), nn.ReLU()), nn.Linear(16, 5))


def nudge(model):
    """Give every adapter a non-zero B and magnitude, as training would."""
    torch.manual_seed(1)
    for layer in model.modules():
        if isinstance(layer, LoRALinear):
            nn.init.normal_(layer.lora_B, std=0.3)
            if layer.dora:
                layer.magnitude.data.mul_(1 + 0.1 * torch.randn_like(layer.magnitude))


@pytest.mark.parametrize("dora", [False, True])
def test_an_adapted_model_equals_the_base_at_initialisation(dora):
    base, x = small_model(), torch.randn(7, 12)
    expected = base(x)
    names = add_adapters(base, rank=4, alpha=8, dora=dora)
    assert names == ["0", "2.0", "3"]
    assert torch.equal(base(x), expected) if not dora else torch.allclose(base(x), expected, atol=1e-6)


@pytest.mark.parametrize("dora", [False, True])
def test_merged_weights_give_the_adapters_outputs_and_unmerge_restores(dora):
    model, x = small_model(), torch.randn(7, 12)
    add_adapters(model, rank=3, dora=dora)
    nudge(model)
    adapted = model(x)
    w0 = model[0].base.weight.clone()
    merge_adapters(model)
    torch.testing.assert_close(model(x), adapted, atol=1e-6, rtol=0)
    model[0].unmerge()
    torch.testing.assert_close(model[0].base.weight, w0, atol=1e-6, rtol=0)
    with pytest.raises(RuntimeError, match="not merged"):
        model[0].unmerge()


def test_only_the_adapters_train_and_their_share_is_small():
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256))
    add_adapters(model, rank=4)
    trainable, total = trainable_parameters(model)
    assert trainable == 2 * (4 * 256 + 256 * 4)
    assert trainable / total < 0.04
    assert all("lora_" in name for name, p in model.named_parameters() if p.requires_grad)


def test_a_name_filter_picks_the_layers():
    model = small_model()
    assert add_adapters(model, rank=2, include=r"^2\.") == ["2.0"]
    assert isinstance(model[0], nn.Linear) and isinstance(model[2][0], LoRALinear)
    assert add_adapters(small_model(), rank=2, include=lambda name, layer: layer.out_features == 5) == ["3"]


def test_dora_has_one_magnitude_per_output_feature_and_a_detached_norm():
    layer = LoRALinear(nn.Linear(6, 4), rank=2, dora=True)
    assert layer.magnitude.shape == (4,)
    torch.testing.assert_close(layer.magnitude, layer.base.weight.norm(dim=1))
    nn.init.normal_(layer.lora_B)
    x = torch.randn(5, 6)
    layer(x).sum().backward()
    # with the norm detached, d out / d m is V x / ||V|| per output row
    v = layer.base.weight + layer.delta()
    expected = (x @ (v / v.norm(dim=1, keepdim=True)).T).sum(0)
    torch.testing.assert_close(layer.magnitude.grad, expected.detach())


def test_dora_guards_zero_rows():
    base = nn.Linear(4, 3)
    with torch.no_grad():
        base.weight[1] = 0
    layer = LoRALinear(base, rank=2, dora=True)
    assert torch.isfinite(layer(torch.randn(2, 4))).all()


@pytest.mark.parametrize("bad, message", [
    (lambda: LoRALinear(nn.Linear(8, 4), rank=0), r"rank must be an int in \[1, min\(in, out\)\] = \[1, 4\]"),
    (lambda: LoRALinear(nn.Linear(8, 4), rank=5), r"\[1, 4\] for a 8 -> 4 layer, got 5"),
    (lambda: LoRALinear(nn.Conv2d(1, 1, 3), rank=1), "wraps an nn.Linear"),
    (lambda: add_adapters(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()), rank=1), "has no nn.Linear layers"),
    (lambda: add_adapters(small_model(), rank=1, include="attn"), "its linear layers are 0, 2.0, 3"),
])
def test_bad_input_is_named(bad, message):
    with pytest.raises((ValueError, TypeError), match=message):
        bad()


@pytest.mark.parametrize("dora", [False, True])
def test_our_layers_equal_peft_on_the_same_weights(dora):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 6))
    ours = nn.Sequential(nn.Linear(10, 8), nn.Tanh(), nn.Linear(8, 6))
    ours.load_state_dict(base.state_dict())
    add_adapters(ours, rank=3, alpha=6, dora=dora)
    nudge(ours)
    config = peft.LoraConfig(r=3, lora_alpha=6, target_modules=["0", "2"], lora_dropout=0.0, use_dora=dora)
    theirs = peft.get_peft_model(base, config)
    with torch.no_grad():
        for i in (0, 2):
            layer = theirs.base_model.model[i]
            layer.lora_A["default"].weight.copy_(ours[i].lora_A)
            layer.lora_B["default"].weight.copy_(ours[i].lora_B)
            if dora:
                layer.lora_magnitude_vector["default"].weight.copy_(ours[i].magnitude)
    x = torch.randn(9, 10)
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=1e-5)
    for i in (0, 2):
        layer = theirs.base_model.model[i]
        torch.testing.assert_close(ours[i].lora_B.grad, layer.lora_B["default"].weight.grad, atol=1e-5, rtol=1e-4)
        if dora:
            torch.testing.assert_close(ours[i].magnitude.grad, layer.lora_magnitude_vector["default"].weight.grad,
                                       atol=1e-5, rtol=1e-4)
