"""Checks for chapter 08's coding exercises: Shazeer's noisy top-k gate and expert capacity.

Neither is in ``tinysora.moe``, whose gate adds fixed-scale noise and never drops a token. Each
check compares with a reference and names a typical mistake in one sentence, including the
chapter's own gate where it is not the answer.
"""

from __future__ import annotations

import numpy as np

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy

# ----------------------------------------------------------------------------- the noisy top-k gate


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _sparse_softmax(scores: np.ndarray, chosen_from: np.ndarray, k: int) -> np.ndarray:
    """Softmax over each row's k largest entries of ``chosen_from`` (scores taken from ``scores``); zeros elsewhere."""
    top = np.argsort(-chosen_from, axis=-1, kind="stable")[:, :k]
    kept = np.full_like(scores, -np.inf)
    np.put_along_axis(kept, top, np.take_along_axis(scores, top, axis=-1), axis=-1)
    e = np.exp(kept - kept.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def reference_noisy_top_k_gating(x, w_gate, w_noise, noise, k):
    """Shazeer et al. (2017), eqs. 3-5: G = softmax(KeepTopK(x W_g + noise * softplus(x W_noise), k))."""
    h = x @ w_gate + noise * _softplus(x @ w_noise)                    # (N, E) noisy scores
    return _sparse_softmax(h, h, k)


_GATE_CASES = [(6, 5, 4, 2), (10, 8, 8, 2), (4, 3, 6, 1), (7, 6, 5, 3)]   # (N, D, E, k)


def check_noisy_top_k_gating(student) -> None:
    """``noisy_top_k_gating(x (N, D), w_gate (D, E), w_noise (D, E), noise (N, E), k)`` -> weights (N, E)."""
    rng = np.random.default_rng(0)
    name = "noisy_top_k_gating"
    for n, d, n_experts, k in _GATE_CASES:
        x, w_gate, w_noise = rng.normal(size=(n, d)), rng.normal(size=(d, n_experts)), rng.normal(size=(d, n_experts))
        noise = rng.normal(size=(n, n_experts)) * 2                     # large enough to change the choice
        got = to_numpy(call_student(student, (x, w_gate, w_noise, noise, k), name), f"the result of {name}")
        expected = reference_noisy_top_k_gating(x, w_gate, w_noise, noise, k)
        if got.shape == (n, k):
            raise CheckFailed(f"{name} returned shape {got.shape}, the k kept weights; return the full (N, E) "
                              "matrix, with 0 for every expert a token does not use")
        clean = x @ w_gate
        noisy = clean + noise * _softplus(x @ w_noise)
        wrong = {
            "it ignores the noise: that is the chapter's gate (tinysora.moe.TopKGate in evaluation mode); add "
            "noise * softplus(x @ w_noise) to the scores before choosing": _sparse_softmax(clean, clean, k),
            "the noise must be scaled by softplus(x @ w_noise), which is always positive, not by x @ w_noise itself":
                _sparse_softmax(clean + noise * (x @ w_noise), clean + noise * (x @ w_noise), k),
            "the experts are chosen on the clean scores; choose them on the noisy scores H(x), which is the point "
            "of the noise (near-ties are broken at random)": _sparse_softmax(noisy, clean, k),
            "the softmax runs over all E experts; keep the top k scores and set the others to -inf first, so "
            "that each token's weights are nonzero for k experts only":
                _sparse_softmax(noisy, noisy, n_experts),
        }
        if got.shape == expected.shape and not np.allclose(got, expected, atol=1e-6):
            for message, candidate in wrong.items():
                if np.allclose(got, candidate, atol=1e-6):
                    raise CheckFailed(f"{name}: {message}")
            if np.allclose(got.sum(-1), 1.0) and not ((got > 1e-12).sum(-1) == k).all():
                raise CheckFailed(f"{name}: every token should have exactly k={k} nonzero weights")
        compare_arrays(got, expected, name)
    passed(f"{name} matches Shazeer et al.'s noisy top-k gate on {len(_GATE_CASES)} routings")


# ----------------------------------------------------------------------------- expert capacity


def reference_capacity_mask(indices: np.ndarray, n_experts: int, capacity: int) -> np.ndarray:
    """(N, k) bool: which routing slots fit. Every token's first choice is served (in token order) before
    any second choice, and so on; an expert takes at most ``capacity`` slots, the rest are dropped."""
    kept = np.zeros(indices.shape, dtype=bool)
    load = np.zeros(n_experts, dtype=int)
    for j in range(indices.shape[1]):              # choice 1 of every token, then choice 2, ...
        for n in range(indices.shape[0]):
            e = indices[n, j]
            if load[e] < capacity:
                kept[n, j], load[e] = True, load[e] + 1
    return kept


def _token_major(indices, n_experts, capacity):
    kept = np.zeros(indices.shape, dtype=bool)
    load = np.zeros(n_experts, dtype=int)
    for n in range(indices.shape[0]):
        for j in range(indices.shape[1]):
            if load[indices[n, j]] < capacity:
                kept[n, j] = True
                load[indices[n, j]] += 1
    return kept


def _last_served(indices, n_experts, capacity):
    return reference_capacity_mask(indices[::-1, ::-1], n_experts, capacity)[::-1, ::-1]


def _routing(rng: np.random.Generator, n: int, n_experts: int, k: int) -> np.ndarray:
    """Each token's k distinct experts, skewed towards expert 0 so that some experts overflow."""
    p = np.linspace(3.0, 1.0, n_experts)
    return np.stack([rng.choice(n_experts, size=k, replace=False, p=p / p.sum()) for _ in range(n)])


_CAPACITY_CASES = [(12, 4, 2, 5), (20, 5, 2, 6), (9, 3, 1, 2), (16, 8, 2, 3), (10, 4, 3, 6)]   # (N, E, k, capacity)


def check_capacity_mask(student) -> None:
    """``capacity_mask(indices (N, k), n_experts, capacity)`` -> bool (N, k), True for the slots that fit."""
    rng = np.random.default_rng(2)
    name = "capacity_mask"
    for n, n_experts, k, capacity in _CAPACITY_CASES:
        indices = _routing(rng, n, n_experts, k)
        got = call_student(student, (indices.copy(), n_experts, capacity), name)
        array = to_numpy(got, f"the result of {name}")
        expected = reference_capacity_mask(indices, n_experts, capacity)
        if array.shape != expected.shape:
            compare_arrays(array, expected, name)
        if not np.isin(array, (0, 1)).all():
            raise CheckFailed(f"{name} should return True/False per routing slot, got values such as {array.flat[0]}")
        kept = array.astype(bool)
        if np.array_equal(kept, expected):
            continue
        load = np.bincount(indices[kept], minlength=n_experts)
        if kept.all():
            raise CheckFailed(f"{name} drops nothing: an expert takes at most capacity={capacity} slots, the "
                              "overflow is dropped")
        wrong = {
            f"an expert keeps capacity + 1 = {capacity + 1} slots; it has room for exactly {capacity} "
            "(compare the load with < capacity before adding a slot)": reference_capacity_mask(indices, n_experts,
                                                                                                capacity + 1),
            f"an expert keeps only capacity - 1 = {capacity - 1} slots; it has room for {capacity}":
                reference_capacity_mask(indices, n_experts, capacity - 1),
            "slots are served token by token (both choices of token 0, then token 1, ...); serve every token's "
            "FIRST choice before any second choice, so that no token loses its best expert to another token's "
            "second choice": _token_major(indices, n_experts, capacity),
            "the last slots to arrive are kept; first come, first served: keep the earliest ones":
                _last_served(indices, n_experts, capacity),
        }
        for message, candidate in wrong.items():
            if np.array_equal(kept, candidate):
                raise CheckFailed(f"{name}: {message}")
        if (load > capacity).any():
            raise CheckFailed(f"{name} gives expert {int(load.argmax())} {int(load.max())} slots, more than its "
                              f"capacity of {capacity}")
        raise CheckFailed(f"{name} keeps {int(kept.sum())} slots where {int(expected.sum())} fit (first choices of "
                          "all tokens in token order, then second choices, up to capacity per expert)")
    passed(f"{name} keeps the right routing slots on {len(_CAPACITY_CASES)} routings")
