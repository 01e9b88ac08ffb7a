"""Checks of chapter 08's exercises: a right answer passes, each typical mistake gets its sentence."""

import numpy as np
import pytest

from tinysora.grading import CheckFailed
from tinysora.grading import moe as grade


def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def gate_right(scores, k):
    indices = np.argsort(-scores, axis=-1)[:, :k]
    return _softmax(np.take_along_axis(scores, indices, -1)), indices


def gate_full_softmax(scores, k):
    indices = np.argsort(-scores, axis=-1)[:, :k]
    return np.take_along_axis(_softmax(scores), indices, -1), indices


def gate_lowest(scores, k):
    indices = np.argsort(scores, axis=-1)[:, :k]
    return _softmax(np.take_along_axis(scores, indices, -1)), indices


def gate_ascending(scores, k):
    w, i = gate_right(scores, k)
    return w[:, ::-1], i[:, ::-1]


def gate_raw(scores, k):
    indices = np.argsort(-scores, axis=-1)[:, :k]
    return np.take_along_axis(scores, indices, -1), indices


def test_top_k_gate_right_answer_passes(capsys):
    grade.check_top_k_gate(gate_right)
    assert "sum to one" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (gate_full_softmax, "softmax over ALL experts"),
    (gate_lowest, "LOWEST"),
    (gate_ascending, "another order"),
    (gate_raw, "raw scores"),
    (lambda s, k: gate_right(s, k)[0], "pair"),
    (lambda s, k: gate_right(s, k + 1 if k < s.shape[1] else k), "shape"),
])
def test_top_k_gate_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_top_k_gate(wrong)


def loss_right(probs, indices, n_experts):
    f = np.bincount(indices.ravel(), minlength=n_experts) / indices.size
    return n_experts * np.sum(f * probs.mean(0))


def test_switch_loss_right_answer_passes(capsys):
    grade.check_switch_loss(loss_right)
    assert "E * sum_i f_i P_i" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda p, i, e: loss_right(p, i, e) / e, "factor E"),
    (lambda p, i, e: e * np.sum(np.bincount(i.ravel(), minlength=e) * p.mean(0)), "raw counts"),
    (lambda p, i, e: e * np.sum(p.mean(0) ** 2), "not router probabilities"),
    (lambda p, i, e: e * np.sum(np.bincount(i[:, 0], minlength=e) / len(i) * p.mean(0)), "first choice"),
    (lambda p, i, e: np.bincount(i.ravel(), minlength=e), "one number"),
    (lambda p, i, e: 1.0, "off by"),
])
def test_switch_loss_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_switch_loss(wrong)
