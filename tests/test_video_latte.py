"""Latte's space-time factorisations (chapter 16): regrouping is the mask it claims to be."""

import pytest
import torch

from tinysora.transformer import MultiHeadAttention
from tinysora.video.latte import (
    VARIANTS,
    Latte,
    LatteConfig,
    _spatial,
    _split_heads,
    _temporal,
    attention_scores,
    block_modes,
)
from tinysora.video.packing import packed_masks


def test_block_modes_of_each_variant():
    assert block_modes("interleaved", 4) == ["spatial", "temporal", "spatial", "temporal"]
    assert block_modes("late", 4) == ["spatial", "spatial", "temporal", "temporal"]
    assert block_modes("full", 2) == ["full", "full"]


def test_attention_scores_formula():
    t, s = 8, 16
    assert attention_scores("full", 2, (8, 4, 4)) == 2 * (t * s) ** 2
    assert attention_scores("interleaved", 2, (8, 4, 4)) == t * s * s + s * t * t


@pytest.mark.parametrize("fn, mask", [(_spatial, "spatial"), (_temporal, "temporal")])
def test_regrouped_attention_equals_masked_full_attention(fn, mask):
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, fused_qkv=True, sdpa=True)
    h = torch.randn(2, 3 * 6, 16)                                 # 3 frames of 2x3 tokens
    masked = attn(h, mask=packed_masks([(3, 2, 3)])[mask])
    torch.testing.assert_close(fn(attn, h, 3), masked, rtol=1e-5, atol=1e-6)


def test_split_heads_is_a_per_head_mask():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, fused_qkv=True, sdpa=True)
    h = torch.randn(2, 4 * 4, 16)
    masks = packed_masks([(4, 2, 2)])
    per_head = torch.stack([masks["spatial"]] * 2 + [masks["temporal"]] * 2)
    torch.testing.assert_close(_split_heads(attn, h, 4), attn(h, mask=per_head), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_starts_at_zero_and_keeps_the_shape(variant):
    model = Latte(LatteConfig(variant=variant, dim=32, depth=2, heads=4))
    x = torch.randn(2, 4, 3, 8, 16)
    out = model(x, torch.rand(2))
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))


def test_only_the_factorised_variant_has_extra_parameters():
    sizes = {v: Latte(LatteConfig(variant=v, dim=32, depth=2, heads=4)).num_params() for v in VARIANTS}
    assert len({sizes[v] for v in VARIANTS if v != "factorised"}) == 1
    assert sizes["factorised"] > sizes["full"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant="joint"), "unknown variant 'joint'"),
    (dict(variant="interleaved", depth=3), "needs an even depth"),
    (dict(variant="split_heads", heads=3, dim=33), "even number of heads"),
    (dict(dim=30, heads=4), "not divisible by 4 heads"),
    (dict(patch=(1, 0, 4)), "positive ints"),
])
def test_bad_configs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LatteConfig(**kwargs)


def test_bad_inputs_raise_clear_errors():
    model = Latte(LatteConfig(dim=32, depth=2, heads=4, num_classes=2))
    with pytest.raises(ValueError, match=r"\(B, T, 3, H, W\)"):
        model(torch.zeros(1, 4, 1, 8, 8), torch.rand(1), torch.tensor([0]))
    with pytest.raises(ValueError, match="frame width 6 is not divisible"):
        model(torch.zeros(1, 4, 3, 8, 6), torch.rand(1), torch.tensor([0]))
    with pytest.raises(ValueError, match="pass the labels"):
        model(torch.zeros(1, 4, 3, 8, 8), torch.rand(1))
    with pytest.raises(ValueError, match="one time per clip"):
        model.forward_packed([torch.zeros(4, 3, 8, 8)], torch.rand(2), torch.tensor([0]))
