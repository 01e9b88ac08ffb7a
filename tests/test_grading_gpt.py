"""Checks of chapter 07's exercises: a right answer passes, each typical mistake gets its sentence."""

import numpy as np
import pytest
import torch

from tinysora.grading import CheckFailed
from tinysora.grading import gpt as grade
from tinysora.transformer import positional_encoding


def rotary_right(x, *, sign=1.0, exponent=1.0, start=0, halves=False):
    t, d = x.shape[-2:]
    angle = sign * np.arange(start, start + t)[:, None] / 10000.0 ** (exponent * np.arange(0, d, 2) / d)
    cos, sin = np.cos(angle), np.sin(angle)
    out = np.array(x, dtype=float)
    first, second = (slice(0, d // 2), slice(d // 2, None)) if halves else (slice(0, None, 2), slice(1, None, 2))
    a, b = x[..., first], x[..., second]
    out[..., first], out[..., second] = a * cos - b * sin, a * sin + b * cos
    return out


def rotary_torch(x):
    """An independent version: complex multiplication, as in the RoFormer and LLaMA code."""
    t, d = x.shape[-2:]
    z = torch.view_as_complex(torch.tensor(x).reshape(*x.shape[:-1], d // 2, 2).contiguous())
    angle = torch.arange(t, dtype=torch.float64)[:, None] * 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    return torch.view_as_real(z * torch.polar(torch.ones_like(angle), angle)).reshape(x.shape)


def test_rotary_right_answers_pass(capsys):
    grade.check_rotary(rotary_right)
    grade.check_rotary(rotary_torch)
    assert "rotates every column pair" in capsys.readouterr().out


def test_rotary_scores_depend_on_the_offset_only():
    rng = np.random.default_rng(0)
    q, k = rng.normal(size=(1, 16)), rng.normal(size=(1, 16))
    def at(t, s):
        return grade.reference_rotary(np.repeat(q, t + 1, 0))[t] @ grade.reference_rotary(np.repeat(k, s + 1, 0))[s]

    assert at(5, 2) == pytest.approx(at(9, 6)) and at(5, 2) != pytest.approx(at(5, 3))


@pytest.mark.parametrize("wrong, message", [
    (lambda x: x + positional_encoding(*x.shape[-2:]), "adds chapter 06's sine table"),
    (lambda x: rotary_right(x, sign=-1.0), "rotates the wrong way"),
    (lambda x: rotary_right(x, halves=True), "GPT-NeoX"),
    (lambda x: rotary_right(x, exponent=2.0), "twice as fast"),
    (lambda x: rotary_right(x, start=1), "positions start at 1"),
    (lambda x: x, "off by"),
    (lambda x: rotary_right(x)[..., :-1], "returned shape"),
])
def test_rotary_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_rotary(wrong)


def test_rotary_not_written():
    def todo(x):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_rotary(todo)


def top_p_right(logits, p):
    probs, order = torch.sort(logits.softmax(-1), descending=True)
    keep_sorted = probs.cumsum(-1) - probs < p
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return torch.where(keep, logits, torch.tensor(float("-inf"), dtype=logits.dtype))


def top_p_numpy(logits, p):
    z = logits.numpy()
    probs = np.exp(z - z.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.full_like(z, -np.inf)
    for row, (pr, lo) in enumerate(zip(probs, z)):
        total = 0.0
        for j in np.argsort(-pr):
            out[row, j] = lo[j]
            total += pr[j]
            if total >= p:
                break
    return out


def top_p_strict(logits, p):                      # drops the token that crosses p
    probs, order = torch.sort(logits.softmax(-1), descending=True)
    keep = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, probs.cumsum(-1) < p)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_one_more(logits, p):
    probs, order = torch.sort(logits.softmax(-1), descending=True)
    before = probs.cumsum(-1) - probs
    keep_sorted = torch.cat([torch.ones_like(before[:, :1], dtype=torch.bool), before[:, :-1] < p], dim=-1)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_unsorted(logits, p):                    # sums in vocabulary order
    probs = logits.softmax(-1)
    return logits.masked_fill(probs.cumsum(-1) - probs >= p, float("-inf"))


def top_k_instead(logits, p):
    kth = torch.topk(logits, 3, dim=-1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def test_top_p_right_answers_pass(capsys):
    grade.check_top_p_filter(top_p_right)
    grade.check_top_p_filter(top_p_numpy)
    assert "nucleus" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (top_k_instead, "that is top-k"),
    (top_p_strict, "drops the token that crosses p|keeps no token"),
    (top_p_one_more, "keeps too many tokens"),
    (top_p_unsorted, "not the most likely ones"),
    (lambda logits, p: top_p_right(logits, p).softmax(-1), "not probabilities"),
    (lambda logits, p: torch.nan_to_num(top_p_right(logits, p), neginf=0.0), "sets the dropped logits to 0"),
    (lambda logits, p: logits, "keeps every token"),
    (lambda logits, p: top_p_right(logits, p)[:, :-1], "returned shape"),
])
def test_top_p_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_top_p_filter(wrong)


def test_the_nucleus_grows_as_the_row_flattens():
    kept = torch.isfinite(grade.reference_top_p_filter(grade._top_p_logits(), 0.9)).sum(-1)
    assert kept[0] < kept[5] and kept.min() >= 1
