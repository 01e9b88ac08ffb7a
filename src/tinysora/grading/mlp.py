"""Checks for chapter 01's coding exercises (``tinysora.mlp``)."""

from __future__ import annotations

import numpy as np

from tinysora.grading.core import CheckFailed, call_student, check_function, compare_arrays, passed


def reference_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def check_softmax(softmax) -> None:
    """``softmax(z)`` over the last axis, for any batch shape, stable for large logits."""
    check_function(softmax, reference_softmax,
                   lambda rng: (rng.normal(size=tuple(rng.integers(1, 6, size=rng.integers(1, 4)))),),
                   name="softmax", trials=6)
    large = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]])
    got = call_student(softmax, (large,), "softmax")
    if np.isnan(np.asarray(got, dtype=float)).any() or np.isinf(np.asarray(got, dtype=float)).any():
        raise CheckFailed("softmax overflows on large logits such as [1000, 1001, 1002]: subtract the "
                          "row's maximum before exponentiating (it does not change the result)")
    compare_arrays(got, reference_softmax(large), "softmax on large logits")
    passed("softmax is also stable for logits around 1000")


def reference_linear_torch_layout(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ weight.T + bias


def check_linear_torch_layout(linear) -> None:
    """``linear(x, weight, bias)`` with ``weight`` stored as nn.Linear does: (d_out, d_in)."""
    def inputs(rng):
        n, d_in, d_out = rng.integers(1, 5), rng.integers(2, 6), rng.integers(2, 6)
        if d_in == d_out:
            d_out += 1  # a square weight would hide a missing transpose behind a shape match
        return rng.normal(size=(n, d_in)), rng.normal(size=(d_out, d_in)), rng.normal(size=d_out)

    check_function(linear, reference_linear_torch_layout, inputs, name="linear", trials=6)


def reference_ffn(x, w_up, b_up, w_down, b_down):
    hidden = np.maximum(x @ w_up + b_up, 0.0)
    return hidden @ w_down + b_down


def check_ffn(ffn) -> None:
    """``ffn(x, w_up, b_up, w_down, b_down)``: up-project, ReLU, down-project (NumPy row layout)."""
    def inputs(rng):
        n, d, h = rng.integers(1, 5), rng.integers(2, 5), rng.integers(5, 9)
        return (rng.normal(size=(n, d)), rng.normal(size=(d, h)), rng.normal(size=h),
                rng.normal(size=(h, d)), rng.normal(size=d))

    check_function(ffn, reference_ffn, inputs, name="ffn", trials=6)
