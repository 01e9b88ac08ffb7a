import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from tinysora.dit import (
    CONDITIONINGS,
    DiT,
    DiTBlock,
    DiTConfig,
    FinalLayer,
    LabelEmbedder,
    TimestepEmbedder,
    UViT,
    dit_config,
    dit_macs,
    per_token,
)
from tinysora.mlp import FFN
from tinysora.transformer import MultiHeadAttention, sinusoidal_embedding


def small(**overrides) -> DiTConfig:
    return DiTConfig(**{**dict(image_size=8, channels=1, patch=2, dim=32, depth=2, heads=4), **overrides})


def leave_zero_init(model: torch.nn.Module) -> torch.nn.Module:
    torch.manual_seed(1)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    return model


def test_dit_block_is_the_identity_at_init():
    torch.manual_seed(0)
    block = DiTBlock(32, 4, cross_attention=True, qk_norm=True)
    x, c, ctx = torch.randn(2, 10, 32), torch.randn(2, 32), torch.randn(2, 5, 32)
    assert torch.equal(block(x, c, ctx), x)
    assert not torch.equal(DiTBlock(32, 4, modulation="adaln")(x, c), x)          # no gates: not the identity


def test_dit_block_reuses_the_chapters_modules():
    block = DiTBlock(32, 4, cross_attention=True)
    assert isinstance(block.attn, MultiHeadAttention) and block.attn.fused_qkv
    assert isinstance(block.cross, MultiHeadAttention) and isinstance(block.mlp, FFN)


@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_every_variant_outputs_exactly_zero_at_init(conditioning):
    torch.manual_seed(0)
    model = DiT(small(conditioning=conditioning))
    out = model(torch.randn(3, 1, 8, 8), torch.tensor([1, 50, 999]), torch.tensor([0, 3, 10]))
    assert out.shape == (3, 1, 8, 8) and torch.equal(out, torch.zeros_like(out))
    assert torch.equal(FinalLayer(16, 8)(torch.randn(2, 5, 16), torch.randn(2, 16)), torch.zeros(2, 5, 8))


@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_every_variant_uses_time_and_label(conditioning):
    model = leave_zero_init(DiT(small(conditioning=conditioning))).eval()
    x = torch.randn(2, 1, 8, 8)
    base = model(x, torch.tensor([3, 3]), torch.tensor([1, 1]))
    assert not torch.allclose(base, model(x, torch.tensor([900, 900]), torch.tensor([1, 1])))
    assert not torch.allclose(base, model(x, torch.tensor([3, 3]), torch.tensor([7, 7])))


def test_zero_initialised_dit_still_trains():
    torch.manual_seed(0)
    model = DiT(small())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([1, 2, 3, 4]), torch.tensor([0, 1, 2, 3])
    for _ in range(3):
        loss = (model(x, t, y) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model(x, t, y).abs().sum() > 0


def test_uvit_has_long_skips_and_runs():
    model = leave_zero_init(UViT(small(depth=5))).eval()
    assert len(model.in_blocks) == len(model.out_blocks) == len(model.skips) == 2
    out = model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2]), torch.tensor([3, 4]))
    assert out.shape == (2, 1, 8, 8) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="odd depth"):
        UViT(small(depth=4))


def test_cross_attention_ignores_masked_context_tokens():
    block = leave_zero_init(DiTBlock(16, 2, cross_attention=True))
    x, c, ctx = torch.randn(2, 6, 16), torch.randn(2, 16), torch.randn(2, 4, 16)
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    changed = ctx.clone()
    changed[0, 2:] = 100.0
    changed[1, 3] = -100.0
    torch.testing.assert_close(block(x, c, ctx, mask), block(x, c, changed, mask))


def test_timestep_embedder_uses_the_package_sinusoid():
    emb = TimestepEmbedder(8, freq_dim=16, time_scale=1000.0)
    t = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(emb(t), emb.mlp(sinusoidal_embedding(t * 1000, 16)))


def test_per_token_spreads_one_vector_per_group():
    mods = torch.arange(6.0).reshape(1, 3, 2)                            # 3 frames
    spread = per_token(mods, 6)                                          # 2 tokens per frame
    assert spread.shape == (1, 6, 2) and torch.equal(spread[0, 2], spread[0, 3])
    with pytest.raises(ValueError, match="cannot be spread"):
        per_token(mods, 7)


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_forward_with_cfg_guides_every_noise_channel(learn_sigma):
    model = leave_zero_init(DiT(small(channels=4, learn_sigma=learn_sigma))).eval()
    x, t, y = torch.randn(3, 4, 8, 8), torch.tensor([5, 6, 7]), torch.tensor([1, 2, 3])
    cond, uncond = model(x, t, y), model(x, t, torch.full_like(y, 10))
    torch.testing.assert_close(model.forward_with_cfg(x, t, y, 1.0), cond, rtol=1e-5, atol=1e-5)
    guided = model.forward_with_cfg(x, t, y, 4.0)
    torch.testing.assert_close(guided[:, :4], uncond[:, :4] + 4 * (cond[:, :4] - uncond[:, :4]), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(guided[:, 4:], cond[:, 4:])                   # variance: conditional


def test_label_dropout_in_training_only():
    emb = LabelEmbedder(10, 4, dropout=0.5)
    dropped = emb.token_drop(torch.zeros(1000, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(dropped.tolist()) == {0, 10} and 0.4 < (dropped == 10).float().mean() < 0.6
    labels = torch.zeros(64, dtype=torch.long)
    assert torch.equal(emb.eval()(labels), emb.table(labels).expand(64, 4))
    assert not torch.equal(emb.train()(labels), emb.table(labels))
    with pytest.raises(ValueError, match="labels must be in 0..10"):
        emb(torch.tensor([11]))


PAPER = {"S/2": (33e6, 6.06e9), "B/2": (130e6, 23.01e9), "L/2": (458e6, 80.71e9), "XL/2": (675e6, 118.64e9)}


@pytest.mark.parametrize("name", PAPER)
def test_paper_sizes_parameters_and_gflops(name):
    params, macs = PAPER[name]
    with torch.device("meta"):
        model = DiT(dit_config(name))
    assert abs(sum(p.numel() for p in model.parameters()) / params - 1) < 0.01
    assert abs(dit_macs(model.config) / macs - 1) < 0.002


@pytest.mark.parametrize("conditioning", CONDITIONINGS)
def test_mac_formula_equals_the_flop_counter(conditioning):
    cfg = small(conditioning=conditioning, dim=64)
    with torch.device("meta"):                   # shapes only; on the CPU the fused attention kernel goes uncounted
        model = DiT(cfg).eval()
        inputs = torch.randn(1, 1, 8, 8), torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        model(*inputs)
    assert counter.get_total_flops() == 2 * dit_macs(cfg)


@pytest.mark.parametrize("overrides, message", [
    (dict(image_size=30, patch=4), "image size 30 is not divisible by patch size 4"),
    (dict(dim=30, heads=4), "divisible by 4 heads"),
    (dict(conditioning="film"), "unknown conditioning"),
    (dict(depth=0), "depth must be a positive int"),
])
def test_bad_configs_are_rejected(overrides, message):
    with pytest.raises(ValueError, match=message):
        small(**overrides)


def test_bad_inputs_are_rejected():
    model = DiT(small())
    with pytest.raises(ValueError, match=r"x must be \(B, 1, 8, 8\)"):
        model(torch.randn(2, 1, 6, 6), torch.tensor([1, 2]), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="unknown DiT"):
        dit_config("XXL/2")
    with pytest.raises(ValueError, match="needs the conditioning c"):
        DiTBlock(16, 2)(torch.randn(1, 3, 16))
    assert math.isfinite(dit_macs(dit_config("XL/2")))
