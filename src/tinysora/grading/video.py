"""Checks for chapter 16's coding exercises: a causal-in-time mask for packed clips, and the token
count of a clip under a causal video autoencoder.

Neither is in :mod:`tinysora.video`: the chapter's packed masks (:func:`tinysora.video.packing.packed_masks`)
let a token see every frame of its clip, and its token count
(:func:`tinysora.video.tubelets.latent_token_count`) divides the frame count evenly. Each check
names the usual mistake in one sentence.
"""

from __future__ import annotations

import numpy as np
import torch

from tinysora.grading.core import CheckFailed, call_student, passed

# ----------------------------------------------------------------------------- causal mask for packed clips

GRID_CASES = [[(3, 1, 2)], [(2, 2, 2), (3, 1, 1)], [(1, 2, 3), (4, 1, 2), (2, 1, 1)]]


def _coordinates(grids):
    clip, frame = [], []
    for i, (t, h, w) in enumerate(grids):
        clip += [i] * (t * h * w)
        frame += [f for f in range(t) for _ in range(h * w)]
    return np.array(clip), np.array(frame)


def reference_causal_time_mask(grids) -> np.ndarray:
    """bool (N, N): query i may attend to key j iff same clip and frame(j) <= frame(i)."""
    clip, frame = _coordinates(grids)
    return (clip[:, None] == clip[None, :]) & (frame[None, :] <= frame[:, None])


def _as_bool(value, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        if value.dtype != torch.bool:
            raise CheckFailed(f"{name} returned a {value.dtype} tensor: return a bool mask, True where a query may "
                              "attend to a key (scaled_dot_product_attention reads a float mask as scores to add)")
        return value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype != bool:
        raise CheckFailed(f"{name} returned {array.dtype} values: return a bool mask, True where a query may attend")
    return array


def check_causal_time_mask(student) -> None:
    """``causal_time_mask(grids)`` with grids [(T_i, H_i, W_i), ...] -> bool (N, N) for the packed tokens."""
    name = "causal_time_mask"
    for grids in GRID_CASES:
        got = _as_bool(call_student(student, (grids,), name), name)
        want = reference_causal_time_mask(grids)
        n = want.shape[0]
        if got.shape != want.shape:
            raise CheckFailed(f"{name}({grids}) returned shape {got.shape}, expected ({n}, {n}): one row and one "
                              "column per token of the packed sequence")
        if np.array_equal(got, want):
            continue
        clip, frame = _coordinates(grids)
        same_clip = clip[:, None] == clip[None, :]
        if np.array_equal(got, want.T):
            raise CheckFailed("the mask is transposed: rows are queries, so query i may see key j when frame(j) <= "
                              "frame(i), not the other way round")
        if np.array_equal(got, same_clip):
            raise CheckFailed("that is the block-diagonal mask: a token still sees later frames of its own clip")
        if np.array_equal(got, same_clip & np.tril(np.ones((n, n), dtype=bool))):
            raise CheckFailed("within a frame every token may see every other (causal in time, not in token order): "
                              "compare frames, not positions")
        if len(grids) > 1 and np.array_equal(got, np.tril(np.ones((n, n), dtype=bool))):
            raise CheckFailed("that is the causal mask over token positions: it lets a clip see the clips before it "
                              "and hides the later tokens of a token's own frame")
        if np.array_equal(got, frame[None, :] <= frame[:, None]):
            raise CheckFailed("tokens attend to other clips: the mask must also require the same clip")
        if np.array_equal(got, same_clip & (frame[None, :] < frame[:, None])):
            raise CheckFailed("a token must see its own frame too (frame(j) <= frame(i), not <): otherwise the first "
                              "frame's tokens see nothing and softmax returns NaN")
        wrong = np.argwhere(got != want)[0]
        raise CheckFailed(f"{name}({grids}) is wrong at query {wrong[0]}, key {wrong[1]}: "
                          f"got {bool(got[tuple(wrong)])}, "
                          f"expected {bool(want[tuple(wrong)])} (clips {clip[wrong[0]]}/{clip[wrong[1]]}, frames "
                          f"{frame[wrong[0]]}/{frame[wrong[1]]})")
    passed(f"{name} is causal in time and block-diagonal over clips for {len(GRID_CASES)} packs")


# ----------------------------------------------------------------------------- tokens under a causal VAE

TOKEN_CASES = [(1, 256, 256), (17, 256, 256), (49, 480, 720), (33, 720, 1280), (5, 16, 32)]
BAD_CASES = [(16, 256, 256), (17, 250, 256)]


def reference_causal_vae_tokens(frames: int, height: int, width: int) -> int:
    """(1 + (T - 1) / 4) latent frames of (H / 8) x (W / 8), then 2 x 2 patches."""
    if (frames - 1) % 4 or height % 16 or width % 16:
        raise ValueError("frames must be 1 + 4k and the sides multiples of 16")
    return (1 + (frames - 1) // 4) * (height // 16) * (width // 16)


def check_causal_vae_tokens(student) -> None:
    """``causal_vae_tokens(frames, height, width)`` -> int; ValueError when the clip does not fit."""
    name = "causal_vae_tokens"
    for frames, height, width in TOKEN_CASES:
        got = call_student(student, (frames, height, width), name)
        want = reference_causal_vae_tokens(frames, height, width)
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            if isinstance(got, float) and got == want:
                raise CheckFailed(f"{name} returned the float {got}: a token count is an int (use //, not /)")
            raise CheckFailed(f"{name} should return an int, got {type(got).__name__} {got!r}")
        if got == want:
            continue
        spatial = (height // 16) * (width // 16)
        latent_frames = 1 + (frames - 1) // 4
        if got == (frames // 4) * spatial:
            raise CheckFailed(f"for {frames} frames you used T / 4 latent frames; a causal VAE encodes the first "
                              f"frame alone, so it has 1 + (T - 1) / 4 = {latent_frames}")
        if got == frames * spatial:
            raise CheckFailed("the frame count is not compressed: the VAE turns 4 frames (after the first) into one")
        if got == latent_frames * (height // 8) * (width // 8):
            raise CheckFailed("you stopped at the latent cells: the 2 x 2 patches make one token of 4 cells")
        if got == latent_frames * height * width // 4:
            raise CheckFailed("the 8 x 8 spatial compression is missing: only the 2 x 2 patches were applied")
        raise CheckFailed(f"{name}({frames}, {height}, {width}) returned {got}, expected {want} "
                          f"({latent_frames} latent frames x {height // 16} x {width // 16} tokens)")
    for frames, height, width in BAD_CASES:
        try:
            got = student(frames, height, width)
        except ValueError:
            continue
        except Exception as error:  # the student's bug, reported instead of a traceback
            raise CheckFailed(f"{name}({frames}, {height}, {width}) raised {type(error).__name__}: {error}; raise a "
                              "ValueError that says which size does not fit") from None
        why = ("T - 1 must be a multiple of 4" if (frames - 1) % 4 else "the sides must be multiples of 8 x 2 = 16")
        raise CheckFailed(f"{name}({frames}, {height}, {width}) returned {got!r}: that clip does not fit ({why}); "
                          "raise ValueError instead of rounding silently")
    passed(f"{name} counts the tokens of {len(TOKEN_CASES)} clips and refuses {len(BAD_CASES)} that do not fit")
