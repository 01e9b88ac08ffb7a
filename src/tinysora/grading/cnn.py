"""Checks for chapter 03's coding exercises (``tinysora.cnn``)."""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
from scipy.signal import convolve2d, correlate2d

from tinysora.cnn import receptive_field as _receptive_field
from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy


def _diagnose(got, candidates: Mapping[str, np.ndarray]) -> None:
    """Raise CheckFailed with the message of the first known mistake that ``got`` equals."""
    got = np.asarray(got, dtype=np.float64)
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


# ----------------------------------------------------------------------------- true convolution


def reference_convolve2d(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The mathematician's 2-D convolution, 'valid' part (kernel flipped in both axes)."""
    return convolve2d(image, kernel, mode="valid")


def check_convolve2d(convolve) -> None:
    """``convolve(image (H, W), kernel (kH, kW)) -> (H - kH + 1, W - kW + 1)`` with the flip."""
    def inputs(rng):
        kh, kw = rng.integers(2, 5, size=2)
        return rng.normal(size=(rng.integers(kh + 1, 10), rng.integers(kw + 1, 10))), rng.normal(size=(kh, kw))

    def mistakes(image, kernel):
        h, w = image.shape
        kh, kw = kernel.shape
        return {
            "convolve2d computed a cross-correlation (what deep-learning libraries call convolution): "
            "flip the kernel in both directions, kernel[::-1, ::-1], before sliding it":
                correlate2d(image, kernel, mode="valid"),
            "convolve2d flipped the kernel upside down only: flip it left-right as well (kernel[::-1, ::-1])":
                correlate2d(image, kernel[::-1], mode="valid"),
            "convolve2d flipped the kernel left-right only: flip it upside down as well (kernel[::-1, ::-1])":
                correlate2d(image, kernel[:, ::-1], mode="valid"),
            f"convolve2d returned the 'full' convolution ({h + kh - 1}, {w + kw - 1}); keep only the 'valid' "
            f"part, where the kernel lies wholly inside the image: ({h - kh + 1}, {w - kw + 1})":
                convolve2d(image, kernel, mode="full"),
            f"convolve2d returned a 'same'-sized result {image.shape}; keep only the 'valid' part, "
            f"({h - kh + 1}, {w - kw + 1})": convolve2d(image, kernel, mode="same"),
        }

    _trials(convolve, reference_convolve2d, inputs, mistakes, name="convolve2d", trials=6)
    passed("convolve2d flips the kernel and matches scipy.signal.convolve2d on 6 random inputs")


# ----------------------------------------------------------------------------- max pooling


def reference_max_pool2d(x: np.ndarray, kernel_size: int, stride: int) -> np.ndarray:
    return torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel_size, stride).numpy()


def check_max_pool2d(max_pool2d) -> None:
    """``max_pool2d(x (B, C, H, W), kernel_size, stride) -> (B, C, out_H, out_W)``, no padding."""
    def inputs(rng):
        kernel = int(rng.integers(2, 4))
        stride = int(rng.integers(1, 4))
        return rng.normal(size=(int(rng.integers(1, 3)), int(rng.integers(1, 4)),
                                int(rng.integers(kernel + 2, 10)), int(rng.integers(kernel + 2, 10)))), kernel, stride

    def mistakes(x, kernel, stride):
        t = torch.from_numpy(x)
        pool = torch.nn.functional
        found = {
            "max_pool2d averages each window: pooling here takes the maximum (np.max over the window)":
                pool.avg_pool2d(t, kernel, stride).numpy(),
        }
        if stride != kernel:
            found["max_pool2d steps by the kernel size; step by `stride` (window (h, w) starts at "
                  "row h * stride, column w * stride)"] = pool.max_pool2d(t, kernel, kernel).numpy()
        if stride != 1:
            found["max_pool2d moves the window one pixel at a time; step by `stride`"] = \
                pool.max_pool2d(t, kernel, 1).numpy()
        return found

    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 6, 6))
    got = to_numpy(call_student(max_pool2d, (x, 2, 2), "max_pool2d"), "the result of max_pool2d")
    if got.shape == (2, 1, 3, 3) or got.shape == (2, 3, 3):
        raise CheckFailed(f"max_pool2d returned shape {got.shape} for x of shape (2, 3, 6, 6): pool each channel "
                          "on its own, so the channel count stays 3")
    _trials(max_pool2d, reference_max_pool2d, inputs, mistakes, name="max_pool2d", trials=8)
    passed("max_pool2d matches torch.nn.functional.max_pool2d on 8 random inputs")


# ----------------------------------------------------------------------------- receptive field


def reference_receptive_field(layers) -> int:
    return _receptive_field([(int(k), int(s)) for k, s in layers]).size


def check_receptive_field(receptive_field) -> None:
    """``receptive_field([(kernel_size, stride), ...]) -> int``: pixels one output pixel sees."""
    fixed = [[(3, 1), (3, 1)], [(3, 1), (2, 2), (3, 1), (2, 2)], [(5, 2), (3, 2), (3, 1)], [(7, 2), (3, 2), (3, 2), (3, 1)]]
    rng = np.random.default_rng(0)
    cases = fixed + [[(int(rng.integers(1, 6)), int(rng.integers(1, 4))) for _ in range(rng.integers(2, 6))]
                     for _ in range(6)]
    for layers in cases:
        expected = reference_receptive_field(layers)
        got = call_student(receptive_field, (list(layers),), "receptive_field")
        try:
            value = float(np.asarray(got, dtype=np.float64))
        except (TypeError, ValueError):
            raise CheckFailed(f"receptive_field should return one number, got {type(got).__name__}") from None
        if np.isclose(value, expected):
            continue
        strides_ignored = 1 + sum(k - 1 for k, _ in layers)
        jump, own_stride = 1, 1
        for k, s in layers:
            jump *= s
            own_stride += (k - 1) * jump
        if np.isclose(value, strides_ignored):
            raise CheckFailed(f"receptive_field({layers}) returned {value:g}, expected {expected}: it ignores the "
                              "strides; a layer adds (k - 1) times the product of the strides of the layers BEFORE it")
        if np.isclose(value, own_stride):
            raise CheckFailed(f"receptive_field({layers}) returned {value:g}, expected {expected}: each layer's "
                              "(k - 1) is multiplied by its own stride too; use the strides of the earlier layers only")
        if np.isclose(value, np.prod([k for k, _ in layers])):
            raise CheckFailed(f"receptive_field({layers}) returned {value:g}, expected {expected}: kernel sizes "
                              "do not multiply; each layer ADDS (k - 1) x (product of the earlier strides)")
        raise CheckFailed(f"receptive_field({layers}) returned {value:g}, expected {expected}")
    passed(f"receptive_field is right on {len(cases)} stacks of layers")


__all__ = ["check_convolve2d", "check_max_pool2d", "check_receptive_field", "reference_convolve2d",
           "reference_max_pool2d", "reference_receptive_field"]
