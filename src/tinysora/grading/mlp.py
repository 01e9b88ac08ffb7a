"""Checks for chapter 01's coding exercises (``tinysora.mlp``)."""

from __future__ import annotations

import numpy as np
import torch

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy


def reference_dense_backward(x, W, b, grad_out):
    """Gradients of ``relu(x @ W + b)`` with respect to x, W and b, by torch's autograd."""
    x_t, W_t, b_t = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    (torch.relu(x_t @ W_t + b_t) * torch.tensor(grad_out)).sum().backward()
    return x_t.grad.numpy(), W_t.grad.numpy(), b_t.grad.numpy()


def _dense_inputs(rng):
    n, d_in, d_out = int(rng.integers(2, 6)), int(rng.integers(2, 5)), int(rng.integers(5, 8))  # d_in != d_out
    return (rng.normal(size=(n, d_in)), rng.normal(size=(d_in, d_out)), rng.normal(size=d_out),
            rng.normal(size=(n, d_out)))


def check_dense_backward(dense_backward) -> None:
    """``dense_backward(x (N, d_in), W (d_in, d_out), b (d_out,), grad_out (N, d_out)) -> (grad_x, grad_W, grad_b)``
    for the layer ``relu(x @ W + b)``."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        x, W, b, grad_out = _dense_inputs(rng)
        result = call_student(dense_backward, (x, W, b, grad_out), "dense_backward")
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise CheckFailed("dense_backward should return a tuple (grad_x, grad_W, grad_b), "
                              f"got {type(result).__name__}")
        names = ("grad_x", "grad_W", "grad_b")
        got = [to_numpy(r, f"the {name} returned by dense_backward") for r, name in zip(result, names)]
        expected = reference_dense_backward(x, W, b, grad_out)
        without_mask = (grad_out @ W.T, x.T @ grad_out, grad_out.sum(0))
        if all(g.shape == w.shape and np.allclose(g, w) for g, w in zip(got, without_mask)):
            raise CheckFailed("dense_backward ignores the ReLU: multiply grad_out by the ReLU's derivative, "
                              "(x @ W + b > 0), before the matrix products")
        if got[2].shape == (x.shape[0], W.shape[1]):
            raise CheckFailed("grad_b has one row per example: the bias is shared by all N rows, so sum its "
                              "gradient over the batch axis")
        for g, e, name in zip(got, expected, ("grad_x", "grad_W", "grad_b")):
            compare_arrays(g, e, f"the {name} of dense_backward")
    passed("dense_backward matches torch's autograd on 6 random layers")


def silu(z: np.ndarray) -> np.ndarray:
    return z / (1.0 + np.exp(-z))


def reference_swiglu_ffn(x, w_gate, w_up, w_down):
    return (silu(x @ w_gate) * (x @ w_up)) @ w_down


def check_swiglu_ffn(swiglu_ffn) -> None:
    """``swiglu_ffn(x (N, d), w_gate (d, h), w_up (d, h), w_down (h, d)) -> (N, d)``:
    ``(silu(x @ w_gate) * (x @ w_up)) @ w_down``."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        n, d, h = int(rng.integers(1, 5)), int(rng.integers(2, 5)), int(rng.integers(5, 9))
        args = (rng.normal(size=(n, d)), rng.normal(size=(d, h)), rng.normal(size=(d, h)), rng.normal(size=(h, d)))
        x, w_gate, w_up, w_down = args
        got = to_numpy(call_student(swiglu_ffn, args, "swiglu_ffn"), "the result of swiglu_ffn")
        mistakes = {
            "swiglu_ffn is the plain FFN of section 1.6 (one up-projection and an activation): SwiGLU multiplies "
            "the activated gate projection by a second, linear up-projection":
                np.maximum(x @ w_up, 0) @ w_down,
            "swiglu_ffn applies the SiLU to the up-projection too: only the gate x @ w_gate goes through the SiLU":
                (silu(x @ w_gate) * silu(x @ w_up)) @ w_down,
            "swiglu_ffn uses a sigmoid gate (that is GLU); SwiGLU's gate is silu(z) = z * sigmoid(z)":
                ((1 / (1 + np.exp(-(x @ w_gate)))) * (x @ w_up)) @ w_down,
            "swiglu_ffn applies the SiLU to the linear branch x @ w_up and not to the gate x @ w_gate: "
            "swap the two": ((x @ w_gate) * silu(x @ w_up)) @ w_down,
        }
        for message, wrong in mistakes.items():
            if got.shape == wrong.shape and np.allclose(got, wrong, atol=1e-6):
                raise CheckFailed(message)
        compare_arrays(got, reference_swiglu_ffn(*args), "swiglu_ffn")
    passed("swiglu_ffn matches the reference on 6 random inputs")


__all__ = ["check_dense_backward", "check_swiglu_ffn", "reference_dense_backward", "reference_swiglu_ffn"]
