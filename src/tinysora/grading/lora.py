"""Checks for chapter 15's coding exercises: LoRA's backward, and a rank-r adapter from a full update.

Neither is in ``tinysora.lora``: the chapter lets autograd do LoRA's backward, and it initialises
adapters at zero, not from a fine-tuned weight. Each check names the usual mistake in one sentence.
"""

from __future__ import annotations

import numpy as np

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy

# ----------------------------------------------------------------------------- the backward of LoRA


def reference_lora_grads(x, grad_out, lora_a, lora_b, scaling):
    """h = x W0^T + s (x A^T) B^T: dL/dA = s B^T g^T x, dL/dB = s g^T (x A^T), for g = dL/dh (N, out)."""
    hidden = x @ lora_a.T                                     # (N, r)
    return scaling * (lora_b.T @ grad_out.T @ x), scaling * (grad_out.T @ hidden)


def check_lora_grads(student) -> None:
    """``lora_grads(x (N, in), grad_out (N, out), lora_a (r, in), lora_b (out, r), scaling)`` -> (dA, dB)."""
    rng = np.random.default_rng(0)
    name = "lora_grads"
    for n, d_in, d_out, r, s in [(5, 6, 4, 2, 2.0), (3, 8, 8, 3, 0.5), (7, 4, 9, 1, 4.0)]:
        x, g = rng.normal(size=(n, d_in)), rng.normal(size=(n, d_out))
        a, b = rng.normal(size=(r, d_in)), rng.normal(size=(d_out, r))
        result = call_student(student, (x, g, a, b, s), name)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed(f"{name} should return the pair (grad_A, grad_B), got {type(result).__name__}")
        got_a, got_b = (to_numpy(v, f"the result of {name}") for v in result)
        want_a, want_b = reference_lora_grads(x, g, a, b, s)
        if got_a.shape == want_b.shape and got_b.shape == want_a.shape and want_a.shape != want_b.shape:
            raise CheckFailed(f"{name} returned (grad_B, grad_A): return grad_A (r, in) first, then grad_B (out, r)")
        for got, want, which in ((got_a, want_a, "grad_A"), (got_b, want_b, "grad_B")):
            if got.shape == want.shape and np.allclose(got, want / s) and s != 1:
                raise CheckFailed(f"{which} is missing the factor alpha / r = scaling: the update is scaled, "
                                  "so its gradients are too")
            if got.shape == want.shape[::-1] and np.allclose(got.T, want):
                raise CheckFailed(f"{which} is transposed: it must have the shape of the parameter, {want.shape}")
            if which == "grad_A" and got.shape == want.shape and np.allclose(got, s * (g.T @ x)[:a.shape[0]]):
                raise CheckFailed("grad_A must go back through B: s * B^T (dL/dh)^T x, not the full layer's gradient")
            compare_arrays(got, want, f"{name}'s {which}")
    passed(f"{name} matches the chain rule through B and A for 3 layers")


# --------------------------------------------------------------------- an adapter from a full update


def reference_lora_from_update(delta, rank):
    """B (out, r), A (r, in) with B A the best rank-r approximation of ``delta`` (Eckart-Young)."""
    u, s, vt = np.linalg.svd(delta, full_matrices=False)
    root = np.sqrt(s[:rank])
    return u[:, :rank] * root, root[:, None] * vt[:rank]


def check_lora_from_update(student) -> None:
    """``lora_from_update(delta (out, in), rank)`` -> (B (out, r), A (r, in)), B @ A closest to delta."""
    rng = np.random.default_rng(1)
    name = "lora_from_update"
    for d_out, d_in, rank in [(6, 5, 2), (8, 8, 3), (4, 9, 1)]:
        delta = rng.normal(size=(d_out, d_in))
        result = call_student(student, (delta, rank), name)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed(f"{name} should return the pair (B, A), got {type(result).__name__}")
        b, a = (to_numpy(v, f"the result of {name}") for v in result)
        if b.shape == (rank, d_in) and a.shape == (d_out, rank):
            raise CheckFailed(f"{name} returned (A, B): return B (out, r) first, then A (r, in), as W0 + B A")
        if b.shape != (d_out, rank) or a.shape != (rank, d_in):
            raise CheckFailed(f"{name} returned B {b.shape} and A {a.shape}, "
                              f"expected {(d_out, rank)} and {(rank, d_in)}")
        ref_b, ref_a = reference_lora_from_update(delta, rank)
        best = ref_b @ ref_a
        u, s, vt = np.linalg.svd(delta, full_matrices=False)
        if np.allclose(b @ a, u[:, :rank] @ vt[:rank]):
            raise CheckFailed("B A drops the singular values: scale the singular vectors by sqrt(s) each (or s once)")
        if np.allclose(b @ a, u[:, -rank:] * s[-rank:] @ vt[-rank:]):
            raise CheckFailed("those are the smallest singular values; numpy's svd sorts them largest first")
        compare_arrays(b @ a, best, f"B @ A from {name}", atol=1e-6)
    passed(f"{name} gives the best rank-r approximation (truncated SVD) for 3 updates")
