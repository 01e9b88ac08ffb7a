"""Checks for chapter 06's coding exercises: sliding-window attention and the backward of attention.

Neither is in ``tinysora.transformer``: the chapter writes full and causal attention forwards. Each
check compares with a reference on fresh inputs and, for a wrong answer, names the mistake in one
sentence (the package's causal attention, a window off by one, a missing scale, an overflow).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.transformer import attention


def _close(got: np.ndarray, candidate: np.ndarray) -> bool:
    with np.errstate(invalid="ignore"):
        return got.shape == candidate.shape and np.allclose(got, candidate, atol=1e-6, rtol=1e-5)


def _diagnose(got: np.ndarray, expected: np.ndarray, name: str, wrong_answers: dict[str, np.ndarray]) -> None:
    """Compare with the reference; if it is wrong, say which known mistake it matches, if any."""
    if not _close(got, expected):
        for message, candidate in wrong_answers.items():
            if _close(got, candidate):
                raise CheckFailed(f"{name}: {message}")
    compare_arrays(got, expected, name)


# ----------------------------------------------------------------------------- sliding-window attention


def window_mask(t: int, window: int) -> np.ndarray:
    """(T, T) bool, True where query i may attend key j: i - window < j <= i (itself and window - 1 before)."""
    i, j = np.arange(t)[:, None], np.arange(t)[None, :]
    return (j <= i) & (j > i - window)


def reference_sliding_window_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, window: int) -> np.ndarray:
    return attention(q, k, v, window_mask(q.shape[-2], window))[0]


# (q and k shape, v shape, window, scale of q and k): the last two have scores in the thousands
_WINDOW_CASES = [((6, 4), (6, 3), 2, 1.0), ((2, 7, 8), (2, 7, 8), 3, 2.0), ((2, 3, 9, 4), (2, 3, 9, 5), 1, 1.0),
                 ((5, 4), (5, 2), 4, 1.0), ((4, 3), (4, 3), 10, 1.0), ((8, 16), (8, 4), 3, 30.0),
                 ((2, 10, 16), (2, 10, 3), 4, 30.0)]


def check_sliding_window_attention(student) -> None:
    """``sliding_window_attention(q, k, v, window)``: q, k (..., T, d_k), v (..., T, d_v) -> (..., T, d_v)."""
    rng = np.random.default_rng(0)
    name = "sliding_window_attention"
    for qk_shape, v_shape, window, scale in _WINDOW_CASES:
        q, k = rng.normal(size=qk_shape) * scale, rng.normal(size=qk_shape) * scale
        v = rng.normal(size=v_shape)
        got = to_numpy(call_student(student, (q, k, v, window), name), f"the result of {name}")
        expected = reference_sliding_window_attention(q, k, v, window)
        t, d_k = qk_shape[-2], qk_shape[-1]
        if got.shape == expected.shape and not np.isfinite(got).all():
            if scale > 1:
                raise CheckFailed(f"{name} returned NaN or inf when the scores are large (here up to "
                                  f"{np.abs(q @ np.swapaxes(k, -1, -2)).max() / math.sqrt(d_k):.0f}): np.exp overflows "
                                  "above 709; subtract each row's maximum score before np.exp (it cancels)")
            raise CheckFailed(f"{name} returned NaN: multiplying a 0/1 mask by -inf gives 0 * -inf = NaN; replace the "
                              "masked scores by -inf with np.where(mask, scores, -np.inf) instead")
        lower = np.tril(np.ones((t, t), dtype=bool))
        band = np.abs(np.arange(t)[:, None] - np.arange(t)[None, :]) < window
        wrong = {
            "it lets every query see ALL earlier keys: that is the chapter's causal attention "
            f"(tinysora.transformer.attention with a lower-triangular mask); keep only the last window={window} "
            "keys, itself included": attention(q, k, v, lower)[0],
            "nothing is masked: each query must see only itself and the window - 1 keys before it":
                attention(q, k, v)[0],
            "the window looks into the future: it is centred on the query (|t - s| < window); keep only keys "
            "s <= t": attention(q, k, v, band)[0],
            f"the window holds window + 1 = {window + 1} keys; it should hold {window}, the query itself and "
            f"the {window - 1} before it": attention(q, k, v, window_mask(t, window + 1))[0],
            "the scores are not scaled: divide q @ k^T by sqrt(d_k) before the softmax":
                attention(q * math.sqrt(d_k), k, v, window_mask(t, window))[0],
        }
        if window > 1:
            wrong[f"the window holds window - 1 = {window - 1} keys; it should hold {window}, the query itself "
                  f"and the {window - 1} before it"] = attention(q, k, v, window_mask(t, window - 1))[0]
            strict = window_mask(t, window + 1) & ~np.eye(t, dtype=bool)
            with np.errstate(all="ignore"):   # query 0 sees no key at all without the diagonal: NaN
                no_self = attention(q, k, v, strict)[0]
            if got.shape == expected.shape and _close(got[..., 1:, :], no_self[..., 1:, :]):
                raise CheckFailed(f"{name}: a query must be allowed to attend to itself; the window is the query "
                                  f"and the {window - 1} keys before it")
        _diagnose(got, expected, name, wrong)
    passed(f"{name} matches the reference on {len(_WINDOW_CASES)} shapes, scores in the thousands included")


# ----------------------------------------------------------------------------- the backward of attention


def reference_attention_backward(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                                 grad_out: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dL/dq, dL/dk, dL/dv) of out = softmax(q k^T / sqrt(d_k)) v, given dL/dout, by torch autograd."""
    tq, tk, tv = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (q, k, v))
    scores = tq @ tk.transpose(-2, -1) / math.sqrt(q.shape[-1])
    out = scores.softmax(dim=-1) @ tv
    out.backward(torch.tensor(grad_out, dtype=torch.float64))
    return tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()


def _backward_mistakes(q, k, v, grad_out, ref_dq, ref_dk) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Typical wrong (dq, dk) pairs: no 1/sqrt(d_k), and the softmax backward without its row-sum term."""
    p = attention(q, k, v)[1]                                       # (..., T, S)
    d_p = grad_out @ np.swapaxes(v, -1, -2)                         # (..., T, S)
    d_s = p * d_p / math.sqrt(q.shape[-1])                          # the Jacobian's diagonal only
    return {
        "dq and dk miss the 1/sqrt(d_k) of the scores (scores = q @ k^T / sqrt(d_k), so the chain rule "
        "brings that factor into both)": (ref_dq * math.sqrt(q.shape[-1]), ref_dk * math.sqrt(q.shape[-1])),
        "the softmax backward keeps only the diagonal of its Jacobian: use "
        "dS = P * (dP - (P * dP).sum(-1, keepdims=True)); the row sum comes from the normalisation":
            (d_s @ k, np.swapaxes(d_s, -1, -2) @ q),
    }


_BACKWARD_CASES = [((2, 5, 4), (2, 5, 4), (2, 5, 4)), ((4, 3), (6, 3), (6, 2)), ((3, 3), (3, 3), (3, 5)),
                   ((2, 2, 4, 8), (2, 2, 7, 8), (2, 2, 7, 3))]


def check_attention_backward(student) -> None:
    """``attention_backward(q, k, v, grad_out)`` -> (dq, dk, dv) of out = softmax(q k^T / sqrt(d_k)) v."""
    rng = np.random.default_rng(1)
    name = "attention_backward"
    for q_shape, k_shape, v_shape in _BACKWARD_CASES:
        q, k, v = rng.normal(size=q_shape), rng.normal(size=k_shape), rng.normal(size=v_shape)
        grad_out = rng.normal(size=q_shape[:-1] + v_shape[-1:])
        result = call_student(student, (q, k, v, grad_out), name)
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise CheckFailed(f"{name} should return three arrays (dq, dk, dv), got {type(result).__name__}")
        dq, dk, dv = (to_numpy(r, f"the {part} returned by {name}") for r, part in zip(result, ("dq", "dk", "dv")))
        ref_dq, ref_dk, ref_dv = reference_attention_backward(q, k, v, grad_out)
        if q_shape[-2] == k_shape[-2] and not _close(dv, ref_dv) and _close(dv, attention(q, k, v)[1] @ grad_out):
            raise CheckFailed(f"{name}: dv is P @ grad_out; the forward is out = P @ v, so dv = P^T @ grad_out")
        compare_arrays(dv, ref_dv, f"{name}'s dv")
        for message, (wrong_dq, wrong_dk) in _backward_mistakes(q, k, v, grad_out, ref_dq, ref_dk).items():
            if (_close(dq, wrong_dq) and not _close(dq, ref_dq)) or (_close(dk, wrong_dk) and not _close(dk, ref_dk)):
                raise CheckFailed(f"{name}: {message}")
        compare_arrays(dq, ref_dq, f"{name}'s dq")
        compare_arrays(dk, ref_dk, f"{name}'s dk")
    passed(f"{name} matches torch autograd on {len(_BACKWARD_CASES)} shapes (T != S included)")
