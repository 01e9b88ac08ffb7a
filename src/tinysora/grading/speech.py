"""Checks for chapter 09's coding exercises (``tinysora.speech``).

* :func:`check_multi_codebook_quantizer` -- BEST-RQ with several codebooks, each frame on its own.
* :func:`check_deltas` -- HTK delta (regression) coefficients along the time axis.
"""

from __future__ import annotations

import numpy as np

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy

# ----------------------------------------------------------------------------- multi-codebook quantiser


def _normalise(x: np.ndarray, axis: int) -> np.ndarray:
    return (x - x.mean(axis, keepdims=True)) / np.sqrt(x.var(axis, keepdims=True) + 1e-5)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _codes(x: np.ndarray, projections: np.ndarray, codebooks: np.ndarray, *, unit_codebook: bool = True) -> np.ndarray:
    """x (B, T, D) already normalised; projections (N, D, d); codebooks (N, K, d) -> (B, T, N)."""
    z = _unit(np.einsum("btd,nde->btne", x, projections))              # (B, T, N, d)
    books = _unit(codebooks) if unit_codebook else codebooks
    distance = ((z[:, :, :, None, :] - books[None, None]) ** 2).sum(-1)  # (B, T, N, K)
    return distance.argmin(-1)


def reference_multi_codebook_codes(frames, projections, codebooks) -> np.ndarray:
    """BEST-RQ with N codebooks: per-frame normalisation, then one projection and nearest unit code each."""
    return _codes(_normalise(np.asarray(frames, dtype=np.float64), -1), np.asarray(projections, dtype=np.float64),
                  np.asarray(codebooks, dtype=np.float64))


def _quantizer_inputs(rng: np.random.Generator):
    b, t, d, n, e, k = 2, int(rng.integers(6, 10)), int(rng.integers(8, 14)), int(rng.integers(2, 4)), 4, 12
    frames = rng.normal(size=(b, t, d)) * rng.uniform(0.5, 4, size=(b, t, 1)) + rng.normal(0, 3, size=(b, t, 1))
    projections = rng.normal(size=(n, d, e)) / np.sqrt(d)
    codebooks = rng.normal(size=(n, k, e)) * rng.uniform(0.2, 3.0, size=(n, k, 1))    # rows of unequal length
    return frames, projections, codebooks


def check_multi_codebook_quantizer(quantize) -> None:
    """``quantize(frames (B, T, D), projections (N, D, d), codebooks (N, K, d)) -> codes (B, T, N)``."""
    name = "quantize"
    rng = np.random.default_rng(0)
    for _ in range(4):
        frames, projections, codebooks = _quantizer_inputs(rng)
        expected = reference_multi_codebook_codes(frames, projections, codebooks)
        got = to_numpy(call_student(quantize, (frames, projections, codebooks), name), f"the result of {name}")
        b, t, n = expected.shape
        if got.shape != expected.shape and got.shape in ((n, t, b), (b, n, t), (n, b, t)):
            raise CheckFailed(f"{name} returned shape {got.shape}; put the codebook axis last: (B, T, N) = "
                              f"{expected.shape}")
        if got.shape == expected.shape and not np.array_equal(got, expected):
            _diagnose_quantizer(got, frames, projections, codebooks, quantize, name)
        compare_arrays(got, expected, name, atol=0, rtol=0)
    passed(f"{name} gives BEST-RQ's codes for every codebook, each frame on its own")


def _diagnose_quantizer(got, frames, projections, codebooks, quantize, name) -> None:
    x = np.asarray(frames, dtype=np.float64)
    mistakes = {
        f"{name} normalised along the time axis (over the frames of a clip, dim=1 of (B, T, D)): a frame's code "
        "then depends on the other frames of the clip; normalise each frame over its own features (the last axis)":
            _codes(_normalise(x, 1), projections, codebooks),
        f"{name} did not normalise the frames: without mean 0 and std 1 per frame, a louder frame gets another "
        "code (BEST-RQ calls the normalisation critical)":
            _codes(x, projections, codebooks),
        f"{name} compared with codebook rows of unequal length: l2-normalise every code vector before "
        "looking for the nearest one":
            _codes(_normalise(x, -1), projections, codebooks, unit_codebook=False),
    }
    for message, wrong in mistakes.items():
        if np.array_equal(got, wrong):
            raise CheckFailed(message)
    changed = x.copy()
    changed[:, -1] = changed[:, -1] * 5 + 7
    again = to_numpy(call_student(quantize, (changed, projections, codebooks), name), f"the result of {name}")
    if again.shape == got.shape and not np.array_equal(again[:, :-1], got[:, :-1]):
        raise CheckFailed(f"changing the last frame changed the codes of other frames: {name} lets frames "
                          "influence each other (a statistic over the time or batch axis?)")


# ----------------------------------------------------------------------------- delta features


def reference_deltas(x, width: int = 2) -> np.ndarray:
    """HTK deltas along axis -2 (time): d_t = sum_n n (x_{t+n} - x_{t-n}) / (2 sum_n n^2), edges repeated."""
    x = np.asarray(x, dtype=np.float64)
    pad = [(0, 0)] * (x.ndim - 2) + [(width, width), (0, 0)]
    padded = np.pad(x, pad, mode="edge")
    t = x.shape[-2]
    total = sum(n * (padded[..., width + n:width + n + t, :] - padded[..., width - n:width - n + t, :])
                for n in range(1, width + 1))
    return total / (2 * sum(n * n for n in range(1, width + 1)))


def _zero_padded_deltas(x, width):
    x = np.asarray(x, dtype=np.float64)
    padded = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(width, width), (0, 0)])
    t = x.shape[-2]
    total = sum(n * (padded[..., width + n:width + n + t, :] - padded[..., width - n:width - n + t, :])
                for n in range(1, width + 1))
    return total / (2 * sum(n * n for n in range(1, width + 1)))


def check_deltas(deltas) -> None:
    """``deltas(x (..., T, F), width) -> (..., T, F)``, the regression slope over 2 * width + 1 frames."""
    name = "deltas"
    rng = np.random.default_rng(0)
    for trial in range(5):
        width = int(rng.integers(1, 4))
        shape = (int(rng.integers(9, 14)), int(rng.integers(5, 8))) if trial % 2 else (2, 11, 6)
        x = rng.normal(size=shape).cumsum(-2)
        expected = reference_deltas(x, width)
        got = to_numpy(call_student(deltas, (x, width), name), f"the result of {name}")
        if got.shape == expected.shape and not np.allclose(got, expected, atol=1e-8):
            norm = 2 * sum(n * n for n in range(1, width + 1))
            mistakes = {
                f"{name} took differences along the feature axis: deltas are slopes over time, axis -2 of "
                "(..., T, F)": reference_deltas(np.swapaxes(x, -1, -2), width).swapaxes(-1, -2),
                f"{name} equals np.gradient along time: that is a one-step central difference; the regression "
                f"formula weights the {width} neighbours on each side by n": np.gradient(x, axis=-2),
                f"{name} forgot the denominator 2 * sum n^2 = {norm}": expected * norm,
                f"{name} has the sign flipped: d_t weighs x_(t+n) - x_(t-n), the future minus the past": -expected,
                f"{name} padded with zeros: repeat the first and last frame instead (an edge frame's slope "
                "should not see a jump to 0)": _zero_padded_deltas(x, width),
            }
            for message, wrong in mistakes.items():
                if wrong.shape == got.shape and np.allclose(got, wrong, atol=1e-8):
                    raise CheckFailed(message)
        compare_arrays(got, expected, name, atol=1e-8, rtol=1e-6)
    passed(f"{name} matches the HTK regression formula on 5 random inputs")


__all__ = ["check_deltas", "check_multi_codebook_quantizer", "reference_deltas", "reference_multi_codebook_codes"]
