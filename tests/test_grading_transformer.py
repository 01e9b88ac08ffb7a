"""Checks of chapter 06's exercises: a right answer passes, each typical mistake gets its sentence."""

import numpy as np
import pytest
import torch

from tinysora import transformer
from tinysora.grading import CheckFailed
from tinysora.grading import transformer as grade


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _softmax_nan_to_zero(s):
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(_softmax(s))


def _windowed(q, k, v, keep, softmax=_softmax, scale=True):
    scores = q @ np.swapaxes(k, -1, -2) / (np.sqrt(q.shape[-1]) if scale else 1.0)
    return softmax(np.where(keep, scores, -np.inf)) @ v


def _band(t, lo, hi):
    """keys s with t - lo <= s <= t + hi"""
    d = np.arange(t)[None, :] - np.arange(t)[:, None]            # s - t
    return (d >= -lo) & (d <= hi)


def window_right(q, k, v, window):
    return _windowed(q, k, v, _band(q.shape[-2], window - 1, 0))


def window_naive_exp(q, k, v, window):
    def softmax(s):
        with np.errstate(all="ignore"):
            e = np.exp(s)
            return e / e.sum(-1, keepdims=True)
    return _windowed(q, k, v, _band(q.shape[-2], window - 1, 0), softmax=softmax)


def window_times_inf(q, k, v, window):
    t = q.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    with np.errstate(invalid="ignore"):
        return _softmax(scores + (~_band(t, window - 1, 0)) * -np.inf) @ v


def window_causal_only(q, k, v, window):
    return transformer.attention(q, k, v, transformer.causal_mask(q.shape[-2]).numpy())[0]


def test_sliding_window_right_answer_passes(capsys):
    grade.check_sliding_window_attention(window_right)
    assert "scores in the thousands" in capsys.readouterr().out


def test_the_reference_is_stable_on_large_scores():
    q = np.random.default_rng(0).normal(size=(6, 16)) * 30
    out = grade.reference_sliding_window_attention(q, q, q, 3)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("wrong, message", [
    (window_causal_only, "the chapter's causal attention"),
    (lambda q, k, v, w: transformer.attention(q, k, v)[0], "nothing is masked"),
    (lambda q, k, v, w: _windowed(q, k, v, _band(q.shape[-2], w - 1, w - 1)), "looks into the future"),
    (lambda q, k, v, w: _windowed(q, k, v, _band(q.shape[-2], w, 0)), "window \\+ 1"),
    (lambda q, k, v, w: _windowed(q, k, v, _band(q.shape[-2], w - 2, 0)), "window - 1"),
    (lambda q, k, v, w: _windowed(q, k, v, _band(q.shape[-2], w - 1, 0), scale=False), "not scaled"),
    (lambda q, k, v, w: _windowed(q, k, v, _band(q.shape[-2], w, 0) & ~np.eye(q.shape[-2], dtype=bool),
                                  softmax=_softmax_nan_to_zero), "attend to itself"),
    (window_naive_exp, "subtract each row's maximum"),
    (window_times_inf, "0 \\* -inf = NaN"),
    (lambda q, k, v, w: window_right(q, k, v, w)[..., :1, :], "returned shape"),
    (lambda q, k, v, w: "oops", "should be an array"),
])
def test_sliding_window_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_sliding_window_attention(wrong)


def test_sliding_window_not_written_and_crashing():
    def todo(q, k, v, window):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_sliding_window_attention(todo)
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        grade.check_sliding_window_attention(lambda q, k, v, w: 1 / 0)


def backward_right(q, k, v, grad_out, *, scale=True, full_jacobian=True, dv_transposed=True):
    s = 1 / np.sqrt(q.shape[-1]) if scale else 1.0
    p = _softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]))     # (..., T, S)
    dv = np.swapaxes(p, -1, -2) @ grad_out if dv_transposed else p @ grad_out
    dp = grad_out @ np.swapaxes(v, -1, -2)
    ds = p * (dp - (p * dp).sum(-1, keepdims=True)) if full_jacobian else p * dp
    return ds @ k * s, np.swapaxes(ds, -1, -2) @ q * s, dv


def test_attention_backward_right_answer_passes(capsys):
    grade.check_attention_backward(backward_right)
    assert "matches torch autograd" in capsys.readouterr().out


def test_attention_backward_reference_agrees_with_the_formula():
    rng = np.random.default_rng(3)
    q, k, v, g = rng.normal(size=(3, 4)), rng.normal(size=(5, 4)), rng.normal(size=(5, 2)), rng.normal(size=(3, 2))
    for ours, theirs in zip(backward_right(q, k, v, g), grade.reference_attention_backward(q, k, v, g)):
        torch.testing.assert_close(torch.tensor(ours), torch.tensor(theirs))


@pytest.mark.parametrize("wrong, message", [
    (lambda q, k, v, g: backward_right(q, k, v, g, scale=False), "miss the 1/sqrt"),
    (lambda q, k, v, g: backward_right(q, k, v, g, full_jacobian=False), "only the diagonal of its Jacobian"),
    (lambda q, k, v, g: backward_right(q, k, v, g, dv_transposed=False), "dv = P\\^T @ grad_out"),
    (lambda q, k, v, g: backward_right(q, k, v, g)[:2], "three arrays"),
    (lambda q, k, v, g: (np.zeros_like(q), np.zeros_like(k), backward_right(q, k, v, g)[2]), "dq is off by"),
    (lambda q, k, v, g: backward_right(q, k, v, g)[::-1], "dv is off by"),
])
def test_attention_backward_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_attention_backward(wrong)


def test_attention_backward_not_written():
    def todo(q, k, v, grad_out):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_attention_backward(todo)
