"""Checks for chapter 06's coding exercises (``tinysora.transformer``)."""

from __future__ import annotations

import math

import numpy as np

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.transformer import attention, positional_encoding, seed_positional_encoding


def _close(got: np.ndarray, candidate: np.ndarray) -> bool:
    return got.shape == candidate.shape and np.allclose(got, candidate, atol=1e-6, rtol=1e-5)


def _diagnose(got, expected: np.ndarray, name: str, wrong_answers: dict[str, np.ndarray]) -> None:
    """Compare with the reference; if it is wrong, say which known mistake it matches, if any."""
    got = to_numpy(got, f"the result of {name}")
    if got.shape == expected.shape and np.isnan(got).any() and not np.isnan(expected).any():
        raise CheckFailed(f"{name} returned NaN in {int(np.isnan(got).sum())} of {got.size} values")
    if not _close(got, expected):
        for message, candidate in wrong_answers.items():
            if _close(got, candidate):
                raise CheckFailed(f"{name}: {message}")
    compare_arrays(got, expected, name)


# ----------------------------------------------------------------------------- positional encoding


def check_positional_encoding(student) -> None:
    """``positional_encoding(n_positions, d_model)`` -> (n_positions, d_model), the paper's table."""
    for n, d in ((10, 8), (50, 16), (7, 32), (1, 2), (128, 64)):
        got = call_student(student, (n, d), "positional_encoding")
        expected = positional_encoding(n, d)
        pos = np.arange(n)[:, None]
        pair = np.arange(0, d, 2)
        swapped = np.zeros((n, d))
        swapped[:, 0::2], swapped[:, 1::2] = np.cos(pos / 10000 ** (pair / d)), np.sin(pos / 10000 ** (pair / d))
        from_one = positional_encoding(n + 1, d)[1:]
        _diagnose(got, expected, "positional_encoding", {
            "the frequencies fall twice as fast as they should: with i stepping over the even columns "
            "0, 2, 4, ..., the exponent is i / d_model (the paper's 2i is the column index), not 2 * i / d_model":
                seed_positional_encoding(n, d),
            "sin and cos are swapped: even columns hold sin, odd columns cos": swapped,
            "positions start at 1; the first token has position 0 (its row is sin 0 = 0, cos 0 = 1)": from_one,
        })
    passed("positional_encoding matches the paper's table for 5 shapes")


# ----------------------------------------------------------------------------- causal attention


def reference_causal_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    t, s = q.shape[-2], k.shape[-2]
    return attention(q, k, v, np.tril(np.ones((t, s), dtype=bool)))[0]


def check_causal_attention(student) -> None:
    """``causal_attention(q, k, v)`` with q, k: (..., T, d_k), v: (..., T, d_v) -> (..., T, d_v)."""
    rng = np.random.default_rng(0)
    shapes = [((5, 4), (5, 3)), ((2, 6, 8), (2, 6, 8)), ((2, 3, 7, 4), (2, 3, 7, 5)), ((1, 3), (1, 2))]
    for qk_shape, v_shape in shapes:
        q, k, v = rng.normal(size=qk_shape) * 2, rng.normal(size=qk_shape) * 2, rng.normal(size=v_shape)
        got = call_student(student, (q, k, v), "causal_attention")
        t, d_k = qk_shape[-2], qk_shape[-1]
        lower = np.tril(np.ones((t, t), dtype=bool))
        strict = np.tril(np.ones((t, t), dtype=bool), k=-1)
        wrong = {
            "future positions leak into the output: apply the causal mask (query t may only see keys <= t)":
                attention(q, k, v)[0],
            "the mask is flipped: each position attends to itself and the FUTURE; keep the lower triangle "
            "(np.tril), mask the upper one": attention(q, k, v, lower.T)[0],
            "the scores are not scaled: divide q @ k^T by sqrt(d_k) before the softmax":
                attention(q * math.sqrt(d_k), k, v, lower)[0],
        }
        array = to_numpy(got, "the result of causal_attention")
        if array.shape == v.shape and np.isnan(array).any():
            raise CheckFailed("causal_attention returned NaN: multiplying a 0/1 mask by -inf gives 0 * -inf = NaN; "
                              "replace masked scores by -inf (np.where(mask, scores, -np.inf)) instead, and "
                              "subtract the row maximum before np.exp")
        if t > 1 and array.shape == v.shape:
            with np.errstate(all="ignore"):   # the first row sees no key at all under a strict mask: NaN
                no_diagonal = attention(q, k, v, strict)[0]
            if np.allclose(array[..., 1:, :], no_diagonal[..., 1:, :], atol=1e-6):
                raise CheckFailed("causal_attention: a position must be allowed to attend to itself; mask only "
                                  "the keys AFTER it (np.tril(..., k=0) keeps the diagonal)")
        _diagnose(array, reference_causal_attention(q, k, v), "causal_attention", wrong)
    passed("causal_attention matches masked scaled dot-product attention on 4 shapes")
