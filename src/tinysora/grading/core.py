"""The machinery behind every autograder check.

A check runs a student's function next to the reference on fresh random inputs and either
prints one line that it passed or raises :class:`CheckFailed` with one readable sentence that
says what is wrong (wrong shape, off by a transpose, NaNs, an exception, wrong values).
nbgrader scores a test cell that raises as zero, so the same check works in the book, in a
student's notebook and under ``nbgrader autograde``.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Sequence

import numpy as np
import torch


class CheckFailed(AssertionError):
    """A wrong answer, explained in one sentence.

    In Jupyter it is shown as that sentence alone (``_render_traceback_``), not as a stack
    trace through the grader.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\u2717 {self}"]


def to_numpy(value: Any, what: str) -> np.ndarray:
    """``value`` (array, tensor, number, nested list) as a float64 array, or :class:`CheckFailed`."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise CheckFailed(f"{what} should be an array or a tensor, but it is {type(value).__name__} "
                          f"({error})") from None
    return array


def call_student(function: Callable, args: Sequence[Any], name: str) -> Any:
    """Call a student's function, turning any exception into one sentence."""
    if not callable(function):
        raise CheckFailed(f"{name} should be a function, but it is {type(function).__name__}")
    try:
        return function(*copy.deepcopy(list(args)))
    except NotImplementedError:
        raise CheckFailed(
            f"{name} is not written yet: replace `raise NotImplementedError()` with your code"
        ) from None
    except Exception as error:  # the student's bug, reported instead of a traceback
        raise CheckFailed(f"{name} raised {type(error).__name__}: {error}") from None


def compare_arrays(got: Any, expected: Any, name: str, *, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Raise :class:`CheckFailed` with a diagnosis unless ``got`` equals ``expected`` within tolerance."""
    expected = to_numpy(expected, "the reference")
    got = to_numpy(got, f"the result of {name}")
    if got.shape != expected.shape:
        hint = ""
        if got.ndim >= 2 and got.swapaxes(-1, -2).shape == expected.shape:
            hint = " (the last two axes look swapped: a missing or extra transpose?)"
        elif got.size == expected.size:
            hint = " (same number of values: a reshape or a wrong axis?)"
        raise CheckFailed(f"{name} returned shape {got.shape}, expected {expected.shape}{hint}")
    if np.isnan(got).any() and not np.isnan(expected).any():
        raise CheckFailed(f"{name} returned NaN in {int(np.isnan(got).sum())} of {got.size} values")
    if np.allclose(got, expected, atol=atol, rtol=rtol, equal_nan=True):
        return
    error = np.abs(got - expected)
    worst = np.unravel_index(np.nanargmax(error), error.shape)
    hint = ""
    square = got.ndim >= 2 and got.shape[-1] == got.shape[-2]
    if square and np.allclose(got.swapaxes(-1, -2), expected, atol=atol, rtol=rtol):
        hint = "; it equals the transpose of the expected result"
    elif np.allclose(got, -expected, atol=atol, rtol=rtol):
        hint = "; it is the expected result with the sign flipped"
    elif np.abs(expected).max() > 0 and np.abs(got).max() > 0:
        ratio = got[np.abs(expected) > 1e-8] / expected[np.abs(expected) > 1e-8]
        if ratio.size and np.allclose(ratio, ratio.flat[0], rtol=1e-4):
            hint = f"; it is the expected result times {ratio.flat[0]:.4g}"
    raise CheckFailed(
        f"{name} is off by up to {error[worst]:.3g} (at index {tuple(int(i) for i in worst)}: "
        f"got {got[worst]:.6g}, expected {expected[worst]:.6g}){hint}"
    )


def check_function(student: Callable, reference: Callable, make_inputs: Callable[[np.random.Generator], Sequence[Any]],
                   *, name: str, trials: int = 5, seed: int = 0, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Compare ``student(*inputs)`` with ``reference(*inputs)`` on ``trials`` random inputs.

    ``make_inputs(rng)`` returns the argument tuple for one trial. Prints one line on success,
    raises :class:`CheckFailed` with a diagnosis on the first disagreement.
    """
    rng = np.random.default_rng(seed)
    for _ in range(trials):
        inputs = make_inputs(rng)
        expected = reference(*copy.deepcopy(list(inputs)))
        got = call_student(student, inputs, name)
        compare_arrays(got, expected, name, atol=atol, rtol=rtol)
    passed(f"{name} matches the reference on {trials} random inputs")


def passed(message: str) -> None:
    """Report a passed check (one line, so a student sees at once that it worked)."""
    print(f"\u2713 {message}")
