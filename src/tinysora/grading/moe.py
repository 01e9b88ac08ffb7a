"""Checks for chapter 08's coding exercises (``tinysora.moe``)."""

from __future__ import annotations

import numpy as np

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy


def reference_top_k_gate(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    indices = np.argsort(-scores, axis=-1, kind="stable")[:, :k]            # (N, k), best first
    top = np.take_along_axis(scores, indices, axis=-1)
    e = np.exp(top - top.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True), indices


def check_top_k_gate(student) -> None:
    """``top_k_gate(scores (N, E), k)`` -> (weights (N, k) summing to one, indices (N, k) best first)."""
    rng = np.random.default_rng(0)
    for n, n_experts, k in ((5, 4, 2), (8, 8, 2), (3, 6, 1), (6, 5, 3)):
        scores = rng.normal(size=(n, n_experts)) * 2
        result = call_student(student, (scores.copy(), k), "top_k_gate")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed("top_k_gate should return a pair (weights, indices)")
        weights, indices = to_numpy(result[0], "weights"), to_numpy(result[1], "indices")
        ref_weights, ref_indices = reference_top_k_gate(scores, k)
        if indices.shape != ref_indices.shape:
            raise CheckFailed(f"top_k_gate returned indices of shape {indices.shape}, expected {ref_indices.shape} (N, k)")
        if np.array_equal(np.sort(indices, axis=-1), np.sort(np.argsort(scores, axis=-1)[:, :k], axis=-1)) and k < n_experts:
            raise CheckFailed("top_k_gate picks the k LOWEST scores; pick the k highest")
        if not np.array_equal(np.sort(indices, axis=-1), np.sort(ref_indices, axis=-1)):
            raise CheckFailed("top_k_gate picks the wrong experts: each token's indices must be its k highest scores")
        if not np.array_equal(indices, ref_indices):
            raise CheckFailed("top_k_gate picks the right experts but in another order: list them from the highest "
                              "score to the lowest (as np.argsort(-scores) or torch.topk do)")
        if weights.shape == ref_weights.shape:
            full = np.exp(scores - scores.max(-1, keepdims=True))
            full /= full.sum(-1, keepdims=True)
            if np.allclose(weights, np.take_along_axis(full, ref_indices, -1), atol=1e-6) and k < n_experts:
                raise CheckFailed("top_k_gate's weights are the softmax over ALL experts, so they sum to less than "
                                  "one; take the softmax over the k kept scores only")
            if np.allclose(weights, np.take_along_axis(scores, ref_indices, -1), atol=1e-6):
                raise CheckFailed("top_k_gate returns the raw scores as weights; apply a softmax over the k kept scores")
        compare_arrays(weights, ref_weights, "top_k_gate's weights")
    passed("top_k_gate picks the top-k experts (best first) with weights that sum to one")


def reference_switch_loss(probs: np.ndarray, indices: np.ndarray, n_experts: int) -> float:
    f = np.bincount(indices.ravel(), minlength=n_experts) / indices.size
    return float(n_experts * (f * probs.mean(axis=0)).sum())


def check_switch_loss(student) -> None:
    """``switch_loss(probs (N, E), indices (N, k), n_experts)`` -> E * sum_i f_i P_i."""
    rng = np.random.default_rng(1)
    for n, n_experts, k in ((16, 4, 1), (40, 8, 2), (9, 3, 2), (25, 5, 1)):
        logits = rng.normal(size=(n, n_experts)) * 1.5
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        indices = np.argsort(-logits, axis=-1)[:, :k]
        got = call_student(student, (probs.copy(), indices.copy(), n_experts), "switch_loss")
        array = to_numpy(got, "the result of switch_loss")
        if array.size != 1:
            raise CheckFailed(f"switch_loss should return one number, but it returned shape {array.shape}")
        value = float(array.ravel()[0])
        expected = reference_switch_loss(probs, indices, n_experts)
        counts = np.bincount(indices.ravel(), minlength=n_experts)
        p = probs.mean(axis=0)
        wrong = {
            "the factor E (n_experts) is missing: the loss is E * sum_i f_i P_i, so that it equals 1 when balanced":
                expected / n_experts,
            "f_i should be the SHARE of routing slots (counts / (N * k)), not the raw counts":
                n_experts * (counts * p).sum(),
            "f_i counts routing slots, not router probabilities: f_i = share of tokens sent to expert i":
                n_experts * (p * p).sum(),
            "with k > 1 every one of the N*k routing slots counts, not only each token's first choice":
                n_experts * (np.bincount(indices[:, 0], minlength=n_experts) / n * p).sum(),
            "f_i should be divided by all N * k routing slots, not by N": n_experts * (counts / n * p).sum(),
        }
        if not np.isclose(value, expected, rtol=1e-6, atol=1e-9):
            for message, candidate in wrong.items():
                if np.isclose(value, candidate, rtol=1e-6, atol=1e-9):
                    raise CheckFailed(f"switch_loss: {message}")
        compare_arrays(value, expected, "switch_loss")
    passed("switch_loss equals E * sum_i f_i P_i on 4 routings")
