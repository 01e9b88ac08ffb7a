"""Uniform frame sampling, tubelet embedding and the token counts of chapter 16."""

import pytest
import torch

from tinysora.video.patches import patchify, token_count
from tinysora.video.tubelets import (
    TubeletEmbedding,
    inflate_central_frame,
    latent_token_count,
    sample_frames,
    uniform_frame_indices,
)


@pytest.mark.parametrize("total, n, expected", [(16, 4, [2, 6, 10, 14]), (8, 8, list(range(8))),
                                                (10, 3, [1, 5, 8]), (5, 1, [2])])
def test_uniform_frame_indices_are_segment_middles(total, n, expected):
    assert uniform_frame_indices(total, n).tolist() == expected


def test_sample_frames_keeps_the_chosen_frames():
    video = torch.arange(12, dtype=torch.float32).reshape(1, 12, 1, 1, 1).expand(2, 12, 3, 4, 4)
    picked = sample_frames(video, 3)
    assert picked.shape == (2, 3, 3, 4, 4)
    assert picked[0, :, 0, 0, 0].tolist() == [2.0, 6.0, 10.0]


@pytest.mark.parametrize("call, message", [
    (lambda: uniform_frame_indices(4, 5), "cannot sample 5 distinct frames from a clip of 4"),
    (lambda: uniform_frame_indices(4, 0), "n must be a positive int"),
    (lambda: sample_frames(torch.zeros(4, 3, 8, 8), 2), r"\(B, T, C, H, W\)"),
    (lambda: TubeletEmbedding(3, 8, (2, 4, 4))(torch.zeros(1, 3, 3, 8, 8)), "frame count 3 is not divisible"),
    (lambda: TubeletEmbedding(3, 8, (2, 4, 4))(torch.zeros(1, 4, 1, 8, 8)), r"\(B, T, 3, H, W\)"),
    (lambda: latent_token_count(16, 1080, 1920, compression=(4, 8, 8), patch=(1, 2, 2)),
     "frame height 135 is not divisible by patch size 2"),
    (lambda: latent_token_count(17, 256, 256, compression=(4, 8, 8)), "frame count 17 is not divisible"),
    (lambda: inflate_central_frame(torch.zeros(3, 4, 4), 2), "conv kernel"),
])
def test_bad_input_raises_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("shape, tubelet", [((2, 8, 3, 16, 16), (2, 4, 4)), ((1, 6, 3, 16, 24), (3, 2, 4)),
                                             ((1, 4, 3, 8, 8), (1, 4, 4))])
def test_tubelet_embedding_is_patchify_then_linear(shape, tubelet):
    torch.manual_seed(0)
    embed = TubeletEmbedding(3, 10, tubelet)
    video = torch.randn(shape)
    tokens = embed(video)
    assert tokens.shape == (shape[0], token_count(shape[1], shape[3], shape[4], tubelet), 10)
    linear = patchify(video, tubelet) @ embed.as_linear_weight().T + embed.proj.bias
    torch.testing.assert_close(tokens, linear, rtol=1e-5, atol=1e-5)


def test_central_frame_inflation_embeds_the_central_frame():
    torch.manual_seed(0)
    frame_embed = torch.nn.Conv2d(3, 6, kernel_size=4, stride=4)
    tube = TubeletEmbedding(3, 6, (3, 4, 4))
    with torch.no_grad():
        tube.proj.weight.copy_(inflate_central_frame(frame_embed.weight, 3))
        tube.proj.bias.copy_(frame_embed.bias)
    video = torch.randn(2, 6, 3, 8, 8)
    centre = video[:, 1::3]                                         # frames 1 and 4: middles of (0,1,2), (3,4,5)
    want = torch.stack([frame_embed(centre[:, i]).flatten(2).transpose(1, 2) for i in range(2)], dim=1)
    torch.testing.assert_close(tube(video), want.flatten(1, 2), rtol=1e-5, atol=1e-5)


def test_latent_token_count_formula_and_padding():
    # 16 frames at 256x256, compressed 4x8x8, 1x2x2 patches: 4 x 16 x 16
    assert latent_token_count(16, 256, 256, compression=(4, 8, 8), patch=(1, 2, 2)) == 4 * 16 * 16
    assert latent_token_count(8, 16, 32, compression=(1, 4, 4), patch=(1, 4, 4)) == 8 * 1 * 2
    # 1080 rows: 135 latent rows, 67.5 patches -> rounded up to 68 with padding
    assert latent_token_count(16, 1080, 1920, compression=(4, 8, 8), patch=(1, 2, 2), pad=True) == 4 * 68 * 120
