"""The chapter-16 checks accept right answers and explain the usual wrong ones."""

import numpy as np
import pytest
import torch

from tinysora.grading import CheckFailed
from tinysora.grading import video as grade
from tinysora.transformer import causal_mask
from tinysora.video.packing import packed_masks, token_coordinates
from tinysora.video.tubelets import latent_token_count


def mask_right(grids):
    c = token_coordinates(grids)
    return (c["clip"][:, None] == c["clip"][None, :]) & (c["frame"][None, :] <= c["frame"][:, None])


def test_causal_mask_right_answers_pass(capsys):
    grade.check_causal_time_mask(mask_right)
    grade.check_causal_time_mask(lambda grids: mask_right(grids).numpy())
    assert "causal in time" in capsys.readouterr().out


def _strict(grids):
    c = token_coordinates(grids)
    return (c["clip"][:, None] == c["clip"][None, :]) & (c["frame"][None, :] < c["frame"][:, None])


def _no_clip(grids):
    c = token_coordinates(grids)
    return c["frame"][None, :] <= c["frame"][:, None]


def _token_causal_per_clip(grids):
    return packed_masks(grids)["full"] & causal_mask(sum(t * h * w for t, h, w in grids))


def _off_by_one(grids):
    m = mask_right(grids).clone()
    m[-1, 0] = ~m[-1, 0]
    return m


@pytest.mark.parametrize("wrong, message", [
    (lambda grids: packed_masks(grids)["full"], "block-diagonal mask"),                 # the package's nearest
    (lambda grids: causal_mask(sum(t * h * w for t, h, w in grids)), "not positions|over token positions"),
    (lambda grids: mask_right(grids).T, "transposed"),
    (_strict, "its own frame too"),
    (_no_clip, "other clips"),
    (_token_causal_per_clip, "compare frames, not positions"),
    (lambda grids: mask_right(grids).float(), "bool mask"),
    (lambda grids: mask_right(grids)[:-1], "one row and one column per token"),
    (_off_by_one, "is wrong at query"),
    (lambda grids: 1 / 0, "raised ZeroDivisionError"),
])
def test_causal_mask_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_causal_time_mask(wrong)


def tokens_right(frames, height, width):
    if (frames - 1) % 4 or height % 16 or width % 16:
        raise ValueError(f"{frames} x {height} x {width} does not fit")
    return (1 + (frames - 1) // 4) * (height // 16) * (width // 16)


def test_causal_vae_tokens_right_answer_passes(capsys):
    grade.check_causal_vae_tokens(tokens_right)
    assert "refuses" in capsys.readouterr().out
    assert tokens_right(49, 480, 720) == 13 * 30 * 45


def _no_raise(frames, height, width):
    return (1 + (frames - 1) // 4) * (height // 16) * (width // 16)


@pytest.mark.parametrize("wrong, message", [
    # the package's nearest: an evenly dividing temporal compression (raises on 17 frames)
    (lambda f, h, w: latent_token_count(f, h, w, compression=(4, 8, 8), patch=(1, 2, 2)), "raised ValueError"),
    (lambda f, h, w: max(f // 4, 1) * (h // 16) * (w // 16) if f > 1 else 0, "1 \\+ \\(T - 1\\) / 4"),
    (lambda f, h, w: f * (h // 16) * (w // 16), "not compressed"),
    (lambda f, h, w: (1 + (f - 1) // 4) * (h // 8) * (w // 8), "2 x 2 patches"),
    (lambda f, h, w: (1 + (f - 1) // 4) * h * w // 4, "8 x 8 spatial compression"),
    (lambda f, h, w: float(tokens_right(f, h, w)), "float"),
    (_no_raise, "raise ValueError instead"),
    (lambda f, h, w: tokens_right(f, h, w) + 1, "expected"),
    (lambda f, h, w: np.int64(tokens_right(f, h, w)) if f > 1 else "one", "should return an int"),
])
def test_causal_vae_tokens_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_causal_vae_tokens(wrong)


def test_a_check_never_crashes_on_a_non_function():
    for check in (grade.check_causal_time_mask, grade.check_causal_vae_tokens):
        with pytest.raises(CheckFailed, match="should be a function"):
            check(None)
    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_causal_vae_tokens(lambda f, h, w: (_ for _ in ()).throw(NotImplementedError()))
    assert torch.is_tensor(mask_right([(1, 1, 1)]))
