"""Checks of chapter 06's exercises: a right answer passes, each typical mistake gets its sentence."""

import math

import numpy as np
import pytest

from tinysora.grading import CheckFailed
from tinysora.grading import transformer as grade


def pe_right(n_positions, d_model):
    pe = np.zeros((n_positions, d_model))
    pos = np.arange(n_positions)[:, None]
    for i in range(0, d_model, 2):
        pe[:, i] = np.sin(pos[:, 0] / 10000 ** (i / d_model))
        pe[:, i + 1] = np.cos(pos[:, 0] / 10000 ** (i / d_model))
    return pe


def pe_seed(n_positions, d_model):
    pe = np.zeros((n_positions, d_model))
    for pos in range(n_positions):
        for i in range(0, d_model, 2):
            pe[pos, i] = math.sin(pos / 10000 ** (2 * i / d_model))
            pe[pos, i + 1] = math.cos(pos / 10000 ** (2 * i / d_model))
    return pe


def pe_swapped(n_positions, d_model):
    return pe_right(n_positions, d_model)[:, [i + 1 if i % 2 == 0 else i - 1 for i in range(d_model)]]


def pe_from_one(n_positions, d_model):
    return pe_right(n_positions + 1, d_model)[1:]


def pe_transposed(n_positions, d_model):
    return pe_right(n_positions, d_model).T


def test_positional_encoding_right_answer_passes(capsys):
    grade.check_positional_encoding(pe_right)
    assert "matches the paper" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (pe_seed, "twice as fast"),
    (pe_swapped, "sin and cos are swapped"),
    (pe_from_one, "positions start at 1"),
    (pe_transposed, "returned shape"),
    (lambda n, d: np.zeros((n, d)), "off by"),
])
def test_positional_encoding_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_positional_encoding(wrong)


def test_positional_encoding_not_written_and_crashing():
    def todo(n, d):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_positional_encoding(todo)
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        grade.check_positional_encoding(lambda n, d: 1 / 0)


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def attn_right(q, k, v):
    t = q.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    scores = np.where(np.tril(np.ones((t, t), bool)), scores, -np.inf)
    return _softmax(scores) @ v


def attn_no_mask(q, k, v):
    return _softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])) @ v


def attn_flipped(q, k, v):
    t = q.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    return _softmax(np.where(np.triu(np.ones((t, t), bool)), scores, -np.inf)) @ v


def attn_unscaled(q, k, v):
    t = q.shape[-2]
    scores = np.where(np.tril(np.ones((t, t), bool)), q @ np.swapaxes(k, -1, -2), -np.inf)
    return _softmax(scores) @ v


def attn_times_inf(q, k, v):
    t = q.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    with np.errstate(invalid="ignore"):
        scores = scores + np.triu(np.ones((t, t)), k=1) * -np.inf   # the seed's wording, literally
        return _softmax(scores) @ v


def attn_strict(q, k, v):
    t = q.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    scores = np.where(np.tril(np.ones((t, t), bool), k=-1), scores, -1e9)
    return _softmax(scores) @ v


def test_causal_attention_right_answer_passes(capsys):
    grade.check_causal_attention(attn_right)
    assert "matches masked" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (attn_no_mask, "future positions leak"),
    (attn_flipped, "the mask is flipped"),
    (attn_unscaled, "not scaled"),
    (attn_times_inf, "0 \\* -inf = NaN"),
    (attn_strict, "attend to itself"),
    (lambda q, k, v: (attn_right(q, k, v), None), "should be an array"),
    (lambda q, k, v: attn_right(q, k, v)[..., :1, :], "returned shape"),
])
def test_causal_attention_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_causal_attention(wrong)
