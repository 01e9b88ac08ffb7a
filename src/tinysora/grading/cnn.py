"""Checks for chapter 03's coding exercises (``tinysora.cnn``)."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from tinysora.cnn import conv2d as _conv2d
from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy


def _diagnose(got, candidates: Mapping[str, np.ndarray]) -> None:
    """Raise CheckFailed with the message of the first known mistake that ``got`` equals."""
    for message, wrong in candidates.items():
        if got.shape == wrong.shape and np.allclose(got, wrong, atol=1e-6):
            raise CheckFailed(message)


def _trials(student: Callable, reference: Callable, make_inputs, diagnoses, *, name: str, trials: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(trials):
        inputs = make_inputs(rng)
        expected = reference(*inputs)
        got = to_numpy(call_student(student, inputs, name), f"the result of {name}")
        _diagnose(got, diagnoses(*inputs))
        compare_arrays(got, expected, name)


# ----------------------------------------------------------------------------- depthwise convolution


def reference_depthwise_conv2d(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``F.conv2d(x, weight[:, None], groups=C)``: x (B, C, H, W), weight (C, k, k) -> (B, C, H-k+1, W-k+1)."""
    return F.conv2d(torch.from_numpy(x), torch.from_numpy(weight)[:, None], groups=x.shape[1]).numpy()


def check_depthwise_conv2d(depthwise_conv2d) -> None:
    """``depthwise_conv2d(x (B, C, H, W), weight (C, k, k)) -> (B, C, H - k + 1, W - k + 1)``, stride 1, no padding."""
    def inputs(rng):
        c, k = int(rng.integers(2, 5)), int(rng.integers(2, 4))
        return (rng.normal(size=(int(rng.integers(1, 3)), c, int(rng.integers(k + 1, 9)), int(rng.integers(k + 1, 9)))),
                rng.normal(size=(c, k, k)))

    def mistakes(x, weight):
        c = x.shape[1]
        mixed = _conv2d(x, np.repeat(weight[None], c, axis=0))      # every output channel sums all inputs
        return {
            "depthwise_conv2d sums over the input channels, as an ordinary convolution (cnn.conv2d) does: in a "
            "depthwise convolution output channel c sees input channel c only": mixed,
            "depthwise_conv2d flips the kernel (a true convolution); deep learning's convolution slides it "
            "unflipped (a cross-correlation)":
                reference_depthwise_conv2d(x, np.ascontiguousarray(weight[:, ::-1, ::-1])),
        }

    rng = np.random.default_rng(1)
    x, weight = rng.normal(size=(2, 3, 6, 6)), rng.normal(size=(3, 3, 3))
    got = to_numpy(call_student(depthwise_conv2d, (x, weight), "depthwise_conv2d"), "the result of depthwise_conv2d")
    if got.shape in {(2, 1, 4, 4), (2, 4, 4)}:
        raise CheckFailed(f"depthwise_conv2d returned shape {got.shape} for 3 channels: keep one output channel "
                          "per input channel, (B, C, H - k + 1, W - k + 1)")
    _trials(depthwise_conv2d, reference_depthwise_conv2d, inputs, mistakes, name="depthwise_conv2d", trials=6)
    passed("depthwise_conv2d matches torch's conv2d(groups=C) on 6 random inputs")


# ----------------------------------------------------------------------------- backward of a convolution


def reference_conv2d_input_grad(grad_out: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """d L / d x for ``out = conv2d(x, weight)`` (stride 1, no padding), given ``grad_out = dL/d out``."""
    k_h, k_w = weight.shape[2:]
    x_shape = (grad_out.shape[0], weight.shape[1], grad_out.shape[2] + k_h - 1, grad_out.shape[3] + k_w - 1)
    x = torch.zeros(x_shape, dtype=torch.float64, requires_grad=True)
    (F.conv2d(x, torch.from_numpy(weight)) * torch.from_numpy(grad_out)).sum().backward()
    return x.grad.numpy()


def check_conv2d_input_grad(conv2d_input_grad) -> None:
    """``conv2d_input_grad(grad_out (B, C_out, oH, oW), weight (C_out, C_in, k, k)) -> (B, C_in, oH+k-1, oW+k-1)``."""
    def inputs(rng):
        c_in, c_out, k = int(rng.integers(2, 4)), int(rng.integers(2, 5)), int(rng.integers(2, 4))
        if c_in == c_out:
            c_out += 1                       # square channel counts would hide a missing channel transpose
        return (rng.normal(size=(int(rng.integers(1, 3)), c_out, int(rng.integers(2, 6)), int(rng.integers(2, 6)))),
                rng.normal(size=(c_out, c_in, k, k)))

    def mistakes(grad_out, weight):
        k = weight.shape[2]
        swapped = np.ascontiguousarray(weight.transpose(1, 0, 2, 3))
        return {
            "conv2d_input_grad slides the kernel unflipped: the gradient of a cross-correlation is a full "
            "cross-correlation with the kernel flipped in both directions, weight[..., ::-1, ::-1]":
                _conv2d(grad_out, swapped, padding=k - 1),
        }

    _trials(conv2d_input_grad, reference_conv2d_input_grad, inputs, mistakes, name="conv2d_input_grad", trials=6)
    passed("conv2d_input_grad matches torch's autograd through conv2d on 6 random layers")


__all__ = ["check_conv2d_input_grad", "check_depthwise_conv2d", "reference_conv2d_input_grad",
           "reference_depthwise_conv2d"]
