"""Packing clips into one sequence with masks (chapter 16): the masks, the waste, and the exact outputs."""

import pytest
import torch

from tinysora.transformer import MultiHeadAttention
from tinysora.video.latte import VARIANTS, Latte, LatteConfig
from tinysora.video.packing import (
    batching_waste,
    block_diagonal_mask,
    bucket_by_shape,
    greedy_pack,
    pack,
    packed_masks,
    token_coordinates,
    unpack,
)


def test_pack_unpack_roundtrip():
    parts = [torch.randn(3, 4), torch.randn(5, 4), torch.randn(1, 4)]
    packed, lengths = pack(parts)
    assert packed.shape == (1, 9, 4) and lengths == [3, 5, 1]
    for a, b in zip(unpack(packed, lengths), parts):
        assert torch.equal(a, b)


def test_block_diagonal_mask_against_a_loop():
    lengths = [2, 3, 1]
    mask = block_diagonal_mask(lengths)
    clip = [0, 0, 1, 1, 1, 2]
    assert mask.tolist() == [[a == b for b in clip] for a in clip]


def test_packed_masks_follow_the_coordinates():
    grids = [(2, 1, 2), (1, 2, 1)]
    c = token_coordinates(grids)
    assert c["clip"].tolist() == [0, 0, 0, 0, 1, 1]
    assert c["frame"].tolist() == [0, 0, 1, 1, 0, 0]
    masks = packed_masks(grids)
    n = 6
    for i in range(n):
        for j in range(n):
            same_clip = c["clip"][i] == c["clip"][j]
            assert masks["spatial"][i, j] == (same_clip and c["frame"][i] == c["frame"][j])
            assert masks["temporal"][i, j] == (same_clip and c["row"][i] == c["row"][j] and c["col"][i] == c["col"][j])
    assert torch.equal(masks["full"], block_diagonal_mask([4, 2]))


def test_masked_attention_over_a_pack_equals_attention_clip_by_clip():
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4).eval()
    parts = [torch.randn(5, 16), torch.randn(7, 16), torch.randn(2, 16)]
    packed, lengths = pack(parts)
    out = unpack(attn(packed, mask=block_diagonal_mask(lengths)), lengths)
    for o, p in zip(out, parts):
        torch.testing.assert_close(o, attn(p[None])[0], rtol=1e-5, atol=1e-6)
    # and without the mask they differ: the clips would see each other
    assert not torch.allclose(unpack(attn(packed), lengths)[0], out[0], atol=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_latte_packed_equals_one_by_one_for_every_variant(variant):
    torch.manual_seed(0)
    model = Latte(LatteConfig(variant=variant, dim=32, depth=2, heads=4, num_classes=3)).eval()
    with torch.no_grad():
        for p in model.parameters():            # leave the zero init, or the output is exactly 0
            p.add_(0.1 * torch.randn_like(p))
    clips = [torch.randn(8, 3, 16, 16), torch.randn(4, 3, 16, 32), torch.randn(6, 3, 32, 16)]
    t, y = torch.rand(3), torch.tensor([0, 1, 2])
    with torch.no_grad():
        packed = model.forward_packed(clips, t, y)
        alone = [model(c[None], t[i:i + 1], y[i:i + 1])[0] for i, c in enumerate(clips)]
    for a, b in zip(packed, alone):
        assert a.shape == b.shape and b.abs().mean() > 0.01
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_buckets_and_greedy_packing():
    assert bucket_by_shape([(8, 16, 16), (4, 16, 32), (8, 16, 16)]) == {(8, 16, 16): [0, 2], (4, 16, 32): [1]}
    packs = greedy_pack([6, 5, 4, 3, 2], capacity=10)
    assert sorted(sorted(p) for p in packs) == [[0, 2], [1, 3, 4]]
    waste = batching_waste([6, 5, 4, 3, 2], capacity=10)
    assert waste["padding"]["token_waste"] == pytest.approx(1 - 20 / 30)
    assert waste["packing"]["token_waste"] == pytest.approx(0.0)
    assert waste["packing"]["score_waste"] == pytest.approx(1 - (36 + 25 + 16 + 9 + 4) / 200)


@pytest.mark.parametrize("call, message", [
    (lambda: pack([]), "non-empty list"),
    (lambda: pack([torch.zeros(2, 3), torch.zeros(2, 4)]), "same width"),
    (lambda: unpack(torch.zeros(1, 5, 2), [2, 2]), r"\(1, 4, D\)"),
    (lambda: block_diagonal_mask([2, 0]), "positive ints"),
    (lambda: token_coordinates([(2, 2)]), "frames, rows, columns"),
    (lambda: greedy_pack([4, 12], capacity=10), "smaller than the longest clip"),
])
def test_bad_input_raises_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
