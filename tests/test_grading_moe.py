"""Checks of chapter 08's exercises: a right answer passes, each typical mistake gets its sentence."""

import numpy as np
import pytest
import torch

from tinysora import moe
from tinysora.grading import CheckFailed
from tinysora.grading import moe as grade


def gate_right(x, w_gate, w_noise, noise, k, *, softplus=True, noisy=True, choose_noisy=True, sparse=True):
    clean = x @ w_gate
    scale = np.logaddexp(0.0, x @ w_noise) if softplus else x @ w_noise
    h = clean + noise * scale if noisy else clean
    chooser = h if choose_noisy else clean
    top = np.argsort(-chooser, axis=-1)[:, :k if sparse else h.shape[1]]
    kept = np.full_like(h, -np.inf)
    np.put_along_axis(kept, top, np.take_along_axis(h, top, -1), -1)
    e = np.exp(kept - kept.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def gate_torch(x, w_gate, w_noise, noise, k):
    """An independent version with torch ops (topk, softplus, scatter)."""
    x, w_gate, w_noise, noise = map(torch.tensor, (x, w_gate, w_noise, noise))
    h = x @ w_gate + noise * torch.nn.functional.softplus(x @ w_noise)
    top, idx = h.topk(k, dim=-1)
    return torch.zeros_like(h).scatter(-1, idx, top.softmax(-1))


def chapter_gate(x, w_gate, w_noise, noise, k):
    """The chapter's TopKGate (no noise in evaluation mode), scattered to (N, E)."""
    gate = moe.TopKGate(x.shape[1], w_gate.shape[1], k).double().eval()
    with torch.no_grad():
        gate.proj.weight.copy_(torch.tensor(w_gate.T))
        weights, idx, _ = gate(torch.tensor(x))
    return torch.zeros(x.shape[0], w_gate.shape[1], dtype=torch.float64).scatter(-1, idx, weights)


def test_noisy_gate_right_answers_pass(capsys):
    grade.check_noisy_top_k_gating(gate_right)
    grade.check_noisy_top_k_gating(gate_torch)
    assert "noisy top-k gate" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (chapter_gate, "it ignores the noise"),
    (lambda *a: gate_right(*a, softplus=False), "scaled by softplus"),
    (lambda *a: gate_right(*a, choose_noisy=False), "chosen on the clean scores"),
    (lambda *a: gate_right(*a, sparse=False), "runs over all E experts"),
    (lambda x, wg, wn, noise, k: np.sort(gate_right(x, wg, wn, noise, k), -1)[:, ::-1][:, :k], "the k kept weights"),
    (lambda *a: gate_right(*a) * 2, "off by"),
    (lambda *a: None, "should be an array|shape"),
])
def test_noisy_gate_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_noisy_top_k_gating(wrong)


def capacity_right(indices, n_experts, capacity):
    """Vectorised: rank each slot within its expert in choice-major order."""
    order = indices.T.reshape(-1)                                     # choice 1 of all tokens, then choice 2
    rank = np.zeros_like(order)
    for e in range(n_experts):
        rank[order == e] = np.arange((order == e).sum())
    return (rank < capacity).reshape(indices.T.shape).T


def test_capacity_right_answer_passes(capsys):
    grade.check_capacity_mask(capacity_right)
    assert "keeps the right routing slots" in capsys.readouterr().out


def test_every_capacity_case_overflows():
    rng = np.random.default_rng(2)
    for n, n_experts, k, capacity in grade._CAPACITY_CASES:
        indices = grade._routing(rng, n, n_experts, k)
        assert not grade.reference_capacity_mask(indices, n_experts, capacity).all()


@pytest.mark.parametrize("wrong, message", [
    (lambda i, e, c: np.ones(i.shape, bool), "drops nothing"),
    (lambda i, e, c: grade.reference_capacity_mask(i, e, c + 1), "capacity \\+ 1"),
    (lambda i, e, c: grade.reference_capacity_mask(i, e, c - 1), "capacity - 1"),
    (grade._token_major, "token by token"),
    (grade._last_served, "first come, first served"),
    (lambda i, e, c: grade.reference_capacity_mask(i, e, c).T, "returned shape"),
    (lambda i, e, c: np.zeros(i.shape, bool), "keeps 0 slots"),
])
def test_capacity_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_capacity_mask(wrong)


def test_capacity_not_written():
    def todo(indices, n_experts, capacity):
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_capacity_mask(todo)
