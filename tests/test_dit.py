import math

import pytest
import torch
import torch.nn.functional as F

from tinysora.dit import (Attention, CrossAttention, DiT, DiTBlock, FinalLayer, TimestepEmbedder,
                          per_token)


def test_dit_block_is_the_identity_at_init():
    torch.manual_seed(0)
    block = DiTBlock(32, 4, cross_attention=True)
    x, c, ctx = torch.randn(2, 10, 32), torch.randn(2, 32), torch.randn(2, 5, 32)
    assert torch.equal(block(x, c, ctx), x)


def test_final_layer_and_dit_output_exactly_zero_at_init():
    torch.manual_seed(0)
    assert torch.equal(FinalLayer(16, 8)(torch.randn(2, 5, 16), torch.randn(2, 16)), torch.zeros(2, 5, 8))
    model = DiT(image_size=8, channels=1, patch=2, dim=32, depth=2, heads=4)
    out = model(torch.randn(3, 1, 8, 8), torch.tensor([1, 50, 999]), torch.tensor([0, 3, 10]))
    assert out.shape == (3, 1, 8, 8) and torch.equal(out, torch.zeros_like(out))


def test_zero_initialised_dit_still_trains():
    torch.manual_seed(0)
    model = DiT(image_size=8, channels=1, patch=2, dim=32, depth=2, heads=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([1, 2, 3, 4]), torch.tensor([0, 1, 2, 3])
    for _ in range(3):
        loss = (model(x, t, y) - x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model(x, t, y).abs().sum() > 0


def test_attention_matches_a_direct_softmax():
    torch.manual_seed(0)
    attn = Attention(16, 2, qk_norm=False)
    x = torch.randn(2, 7, 16)
    q, k, v = attn.qkv(x).chunk(3, dim=-1)
    heads = lambda z: z.reshape(2, 7, 2, 8).transpose(1, 2)               # (B, H, N, d)
    weights = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(8), dim=-1)
    direct = attn.proj((weights @ heads(v)).transpose(1, 2).reshape(2, 7, 16))
    torch.testing.assert_close(attn(x), direct, rtol=1e-5, atol=1e-5)


def test_cross_attention_ignores_masked_context_tokens():
    torch.manual_seed(0)
    cross = CrossAttention(16, 2)
    x, ctx = torch.randn(2, 6, 16), torch.randn(2, 4, 16)
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    changed = ctx.clone()
    changed[0, 2:] = 100.0
    changed[1, 3] = -100.0
    torch.testing.assert_close(cross(x, ctx, mask), cross(x, changed, mask))


def test_timestep_sinusoid_matches_formula():
    t = torch.tensor([0.0, 3.0, 500.0])
    emb = TimestepEmbedder.sinusoid(t, 8)
    for i, ti in enumerate(t.tolist()):
        for k in range(4):
            w = math.exp(-math.log(10000) * k / 4)
            assert emb[i, k].item() == pytest.approx(math.cos(ti * w), abs=1e-4)
            assert emb[i, 4 + k].item() == pytest.approx(math.sin(ti * w), abs=1e-4)


def test_per_token_spreads_one_vector_per_group():
    mods = torch.arange(6.0).reshape(1, 3, 2)                            # 3 frames
    spread = per_token(mods, 6)                                          # 2 tokens per frame
    assert spread.shape == (1, 6, 2) and torch.equal(spread[0, 2], spread[0, 3])
    with pytest.raises(ValueError, match="cannot be spread"):
        per_token(mods, 7)


def test_forward_with_cfg_scale_one_is_conditional():
    torch.manual_seed(0)
    model = DiT(image_size=8, channels=2, patch=2, dim=32, depth=1, heads=4)
    for p in model.parameters():                                        # leave the zero init
        torch.nn.init.normal_(p, std=0.1)
    x, t, y = torch.randn(3, 2, 8, 8), torch.tensor([5, 6, 7]), torch.tensor([1, 2, 3])
    torch.testing.assert_close(model.forward_with_cfg(x, t, y, 1.0), model(x, t, y), rtol=1e-5, atol=1e-5)
    uncond = model(x, t, torch.full_like(y, 10))
    guided = model.forward_with_cfg(x, t, y, 4.0)
    torch.testing.assert_close(guided, uncond + 4 * (model(x, t, y) - uncond), rtol=1e-4, atol=1e-4)


def test_token_drop_uses_the_null_label():
    model = DiT(num_classes=10, class_dropout=0.5)
    dropped = model.token_drop(torch.zeros(1000, dtype=torch.long), torch.Generator().manual_seed(0))
    assert set(dropped.tolist()) == {0, 10}
    assert 0.4 < (dropped == 10).float().mean() < 0.6


def test_bad_width_is_rejected():
    with pytest.raises(ValueError, match="not divisible by 3 heads"):
        Attention(16, 3)
