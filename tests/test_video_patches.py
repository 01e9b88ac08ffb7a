import math

import pytest
import torch

from tinysora.transformer import sinusoidal_embedding
from tinysora.video.patches import patch_grid, patchify, sincos_pos_embed_3d, token_count, unpatchify

SHAPES = [(1, 1, 3, 8, 8), (2, 8, 3, 16, 16), (1, 6, 4, 16, 24), (3, 4, 2, 24, 8), (1, 12, 1, 4, 4)]
PATCHES = [(1, 1, 1), (1, 2, 2), (2, 2, 2), (2, 4, 4), (1, 4, 2)]


CASES = [(shape, patch) for shape in SHAPES for patch in PATCHES
         if shape[1] % patch[0] == 0 and shape[3] % patch[1] == 0 and shape[4] % patch[2] == 0]


@pytest.mark.parametrize("shape, patch", CASES)
def test_patchify_roundtrip_any_shape(shape, patch):
    b, t, c, h, w = shape
    video = torch.randn(shape)
    tokens = patchify(video, patch)
    assert tokens.shape == (b, token_count(t, h, w, patch), math.prod(patch) * c)
    assert torch.equal(unpatchify(tokens, patch_grid(t, h, w, patch), patch), video)


def test_token_count_formula():
    assert token_count(16, 64, 64, (2, 8, 8)) == 8 * 8 * 8
    assert token_count(8, 16, 24, (1, 2, 2)) == 8 * 8 * 12


def test_patchify_then_linear_equals_strided_conv3d():
    torch.manual_seed(0)
    video = torch.randn(2, 4, 3, 8, 12)
    patch, dim = (2, 4, 4), 5
    conv = torch.nn.Conv3d(3, dim, kernel_size=patch, stride=patch)
    # a Linear whose weight is the conv kernel flattened in patchify's (pt ph pw c) order
    weight = conv.weight.permute(0, 2, 3, 4, 1).reshape(dim, -1)
    ours = patchify(video, patch) @ weight.T + conv.bias
    theirs = conv(video.transpose(1, 2)).flatten(2).transpose(1, 2)     # (B, T'H'W', D), time-major
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_tokens_of_one_frame_are_contiguous():
    video = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 1, 4, 4)
    tokens = patchify(video, (1, 2, 2))
    assert (tokens[0, :4] < 16).all() and (tokens[0, 4:] >= 16).all()


@pytest.mark.parametrize("sizes, message", [
    ((8, 30, 32), "frame height 30 is not divisible by patch size 4"),
    ((8, 32, 30), "frame width 30 is not divisible by patch size 4"),
    ((7, 32, 32), "frame count 7 is not divisible by patch size 2"),
])
def test_indivisible_sizes_raise_clear_errors(sizes, message):
    with pytest.raises(ValueError, match=message):
        patchify(torch.zeros(1, sizes[0], 3, sizes[1], sizes[2]), (2, 4, 4))


def test_sincos_3d_is_the_package_sinusoid_per_axis():
    emb = sincos_pos_embed_3d(16, (2, 3, 4), dims=(4, 6, 6)).reshape(2, 3, 4, 16)
    torch.testing.assert_close(emb[1, 2, 3], torch.cat([sinusoidal_embedding(torch.tensor(float(p)), d)
                                                        for p, d in ((1, 4), (2, 6), (3, 6))]))
    image = sincos_pos_embed_3d(16, (1, 3, 4), dims=(0, 8, 8))          # images: no time channels
    torch.testing.assert_close(image[5], torch.cat([sinusoidal_embedding(torch.tensor(1.0), 8),
                                                    sinusoidal_embedding(torch.tensor(1.0), 8)]))
    with pytest.raises(ValueError, match="must be even, non-negative"):
        sincos_pos_embed_3d(16, (1, 3, 4), dims=(2, 7, 7))


@pytest.mark.parametrize("grid", [(8, 4, 4), (4, 2, 3), (12, 3, 2), (1, 1, 1)])
def test_sincos_3d_any_grid_distinct_positions(grid):
    emb = sincos_pos_embed_3d(64, grid)
    assert emb.shape == (math.prod(grid), 64)
    assert torch.cdist(emb, emb).add(torch.eye(len(emb)) * 1e3).min() > 1e-3
    # a sub-grid gets the same embedding as the same positions of a larger grid (any size works)
    bigger = (grid[0] + 1, grid[1] + 2, grid[2] + 1)
    big = sincos_pos_embed_3d(64, bigger).reshape(*bigger, 64)
    torch.testing.assert_close(big[: grid[0], : grid[1], : grid[2]].reshape(-1, 64), emb)
