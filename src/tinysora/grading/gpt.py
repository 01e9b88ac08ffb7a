"""Checks for chapter 07's coding exercises: rotary position embeddings and top-p (nucleus) filtering.

Neither is in ``tinysora.gpt``, which learns a position table and samples with temperature and top-k.
Each check compares with a reference and names a typical mistake in one sentence, including the
package's nearest function (chapter 06's additive sine table, the chapter's top-k filter).
"""

from __future__ import annotations

import numpy as np
import torch

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.transformer import positional_encoding

# ----------------------------------------------------------------------------- rotary position embeddings


def _rotate(x: np.ndarray, angle: np.ndarray, pairs: str = "neighbours") -> np.ndarray:
    """Rotate column pairs of x (..., T, d) by angle (T, d/2): neighbours (2i, 2i+1) or halves (i, i + d/2)."""
    out = np.array(x, dtype=np.float64)
    half = x.shape[-1] // 2
    if pairs == "neighbours":
        first, second = slice(0, None, 2), slice(1, None, 2)
    else:
        first, second = slice(0, half), slice(half, None)
    a, b = x[..., first], x[..., second]
    out[..., first] = a * np.cos(angle) - b * np.sin(angle)
    out[..., second] = a * np.sin(angle) + b * np.cos(angle)
    return out


def _angles(t: int, d: int, exponent: float = 1.0, start: int = 0) -> np.ndarray:
    position = np.arange(start, start + t)[:, None]                   # (T, 1)
    theta = 10000.0 ** (-exponent * np.arange(0, d, 2) / d)           # (d/2,): the frequencies of chapter 06
    return position * theta                                           # (T, d/2)


def reference_rotary(x: np.ndarray) -> np.ndarray:
    """x (..., T, d): pair (2i, 2i+1) of position t rotated by t * 10000^(-2i/d)."""
    t, d = x.shape[-2:]
    return _rotate(x, _angles(t, d))


_ROTARY_SHAPES = [(6, 8), (2, 5, 4), (2, 3, 7, 16), (1, 2), (9, 6)]


def check_rotary(student) -> None:
    """``rotary(x)``: x (..., T, d) with d even -> the same shape, each column pair rotated by its angle."""
    rng = np.random.default_rng(0)
    name = "rotary"
    for shape in _ROTARY_SHAPES:
        x = rng.normal(size=shape)
        got = to_numpy(call_student(student, (x.copy(),), name), f"the result of {name}")
        t, d = shape[-2:]
        expected = reference_rotary(x)
        if got.shape == expected.shape and not np.allclose(got, expected, atol=1e-6):
            wrong = {
                "it adds chapter 06's sine table to x; rotary embeddings do not add anything, they ROTATE each "
                "column pair by the angle the table's sin and cos describe": x + positional_encoding(t, d),
                "it rotates the wrong way: the pair (a, b) becomes (a cos - b sin, a sin + b cos)":
                    _rotate(x, -_angles(t, d)),
                "it pairs column i with column i + d/2 (GPT-NeoX's layout); this exercise pairs neighbouring "
                "columns (2i, 2i+1), as the sine table of chapter 06 does": _rotate(x, _angles(t, d), "halves"),
                "the frequencies fall twice as fast as they should: theta_i = 10000^(-2i/d) with 2i the column "
                "index 0, 2, 4, ... (the seed's doubled exponent again)": _rotate(x, _angles(t, d, exponent=2.0)),
                "positions start at 1; the first token has position 0 and is not rotated at all":
                    _rotate(x, _angles(t, d, start=1)),
            }
            for message, candidate in wrong.items():
                if np.allclose(got, candidate, atol=1e-6):
                    raise CheckFailed(f"{name}: {message}")
        compare_arrays(got, expected, name)
    passed(f"{name} rotates every column pair by its angle, {len(_ROTARY_SHAPES)} shapes")


# ----------------------------------------------------------------------------- top-p (nucleus) filtering


def reference_top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep each row's smallest set of most likely tokens whose probability reaches p; the rest -> -inf."""
    probs, order = logits.softmax(-1).sort(dim=-1, descending=True)  # (B, V), most likely first
    before = probs.cumsum(-1) - probs                                 # the mass of the more likely tokens
    drop_sorted = before >= p                                         # the set already reached p without it
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def _top_p_logits() -> torch.Tensor:
    """Rows from peaked to flat, so that the kept sets have different sizes."""
    generator = torch.Generator().manual_seed(0)
    spread = torch.tensor([[4.0], [2.0], [1.0], [0.5], [3.0], [0.2]], dtype=torch.float64)
    return torch.randn(6, 12, generator=generator, dtype=torch.float64) * spread


def check_top_p_filter(student) -> None:
    """``top_p_filter(logits (B, V), p)`` -> logits with everything outside each row's nucleus set to -inf."""
    name = "top_p_filter"
    logits = _top_p_logits()
    for p in (0.9, 0.5, 0.75, 0.99, 1e-3, 1.0):
        got = to_numpy(call_student(student, (logits.clone(), p), name), f"the result of {name}")
        expected = reference_top_p_filter(logits, p)
        if got.shape != tuple(expected.shape):
            compare_arrays(got, expected, name)
        kept = np.isfinite(got)
        want = torch.isfinite(expected).numpy()
        if np.array_equal(kept, want) and np.allclose(got[kept], logits.numpy()[kept], atol=1e-6):
            continue
        if np.isfinite(got).all() and np.allclose(got.sum(-1), 1.0) and not want.all():
            raise CheckFailed(f"{name} should return filtered logits, not probabilities: leave the softmax to the "
                              "sampler")
        if np.isfinite(got).all() and (got == 0).any() and not want.all():
            raise CheckFailed(f"{name} sets the dropped logits to 0, but 0 is an ordinary logit that softmax still "
                              "gives probability to; set them to -inf")
        counts, want_counts = kept.sum(-1), want.sum(-1)
        if (counts == 0).any():
            raise CheckFailed(f"{name} keeps no token at all in some row (at p={p}); always keep at least the most "
                              "likely one: the set must REACH p, so the token that crosses p belongs to it")
        if kept.all():
            raise CheckFailed(f"{name} keeps every token (at p={p}); drop the tokens outside the smallest set of "
                              "most likely tokens whose probability reaches p")
        ranked = np.argsort(-logits.numpy(), axis=-1)                 # most likely first
        if any(set(ranked[r, :c]) != set(np.flatnonzero(kept[r])) for r, c in enumerate(counts)):
            raise CheckFailed(f"{name} keeps tokens that are not the most likely ones: sort the probabilities from "
                              "the most likely down before summing them (and put the mask back in vocabulary order)")
        if len(set(counts.tolist())) == 1 and len(set(want_counts.tolist())) > 1:
            raise CheckFailed(f"{name} keeps {counts[0]} tokens in every row: that is top-k (the chapter's filter); "
                              "top-p keeps as many tokens as it takes to reach probability p, few in a peaked row, "
                              "many in a flat one")
        if (counts <= want_counts).all():
            raise CheckFailed(f"{name} drops the token that crosses p (at p={p}): keep the smallest set of most "
                              "likely tokens whose probability is at least p, the crossing token included")
        if (counts >= want_counts).all():
            raise CheckFailed(f"{name} keeps too many tokens (at p={p}): stop at the first token at which the "
                              "kept probability reaches p")
        compare_arrays(np.where(kept, got, -1e30), torch.where(torch.isfinite(expected), expected,
                                                                torch.tensor(-1e30)), name)
    passed(f"{name} keeps each row's nucleus, from 1 token (p = 0.001) to all of them (p = 1)")
