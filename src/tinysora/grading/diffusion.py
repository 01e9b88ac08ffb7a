"""Checks for chapter 12's coding exercises (``tinysora.diffusion``).

* :func:`check_x0_from_v` -- clean data from a v-prediction (Salimans & Ho 2022);
* :func:`check_trailing_timesteps` -- diffusers' "trailing" timestep spacing;
* :func:`check_heun_step` -- a second-order (Heun) step for rectified flow.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from tinysora.diffusion import DDPM, linear_beta_schedule
from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy


def _diagnose(got: np.ndarray, candidates: Mapping[str, np.ndarray]) -> None:
    """Raise CheckFailed with the message of the first known mistake that ``got`` equals."""
    for message, wrong in candidates.items():
        wrong = np.asarray(wrong, dtype=np.float64)
        if got.shape == wrong.shape and np.allclose(got, wrong, atol=1e-6, rtol=1e-5):
            raise CheckFailed(message)


# ----------------------------------------------------------------------------- v-prediction

def reference_x0_from_v(x_t: torch.Tensor, v: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """x0 = sqrt(abar) x_t - sqrt(1 - abar) v, for v = sqrt(abar) eps - sqrt(1 - abar) x0."""
    return abar.sqrt() * x_t - (1 - abar).sqrt() * v


def check_x0_from_v(x0_from_v: Callable) -> None:
    """``x0_from_v(x_t (B, D), v (B, D), abar (B, 1)) -> x0 (B, D)``."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        b, d = int(rng.integers(2, 6)), int(rng.integers(2, 7))
        x0, eps = torch.from_numpy(rng.normal(size=(b, d))), torch.from_numpy(rng.normal(size=(b, d)))
        abar = torch.from_numpy(rng.uniform(0.05, 0.95, size=(b, 1)))
        x_t = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
        v = abar.sqrt() * eps - (1 - abar).sqrt() * x0
        got = to_numpy(call_student(x0_from_v, (x_t, v, abar), "x0_from_v"), "the result of x0_from_v")
        _diagnose(got, {
            "x0_from_v treated v as the noise eps ((x_t - sqrt(1 - abar) v) / sqrt(abar) is DDPM's "
            "predict_x0): v mixes noise and data, x0 = sqrt(abar) x_t - sqrt(1 - abar) v":
                (x_t - (1 - abar).sqrt() * v) / abar.sqrt(),
            "x0_from_v added the v term: x0 = sqrt(abar) x_t MINUS sqrt(1 - abar) v":
                abar.sqrt() * x_t + (1 - abar).sqrt() * v,
            "x0_from_v swapped the two coefficients: sqrt(abar) multiplies x_t, sqrt(1 - abar) multiplies v":
                (1 - abar).sqrt() * x_t - abar.sqrt() * v,
            "x0_from_v used abar where its square root belongs: x0 = sqrt(abar) x_t - sqrt(1 - abar) v":
                abar * x_t - (1 - abar) * v,
            "x0_from_v returned the noise eps = sqrt(1 - abar) x_t + sqrt(abar) v, not the clean data x0":
                (1 - abar).sqrt() * x_t + abar.sqrt() * v,
        })
        compare_arrays(got, x0, "x0_from_v")
    passed("x0_from_v recovers the clean data from x_t and v on 5 random batches")


# ----------------------------------------------------------------------------- trailing spacing

def reference_trailing_timesteps(num_train: int, steps: int) -> list[int]:
    """diffusers' "trailing" spacing: round(arange(T, 0, -T / N)) - 1, noisiest first."""
    return [int(t) for t in np.round(np.arange(num_train, 0, -num_train / steps)).astype(np.int64) - 1]


def check_trailing_timesteps(trailing_timesteps: Callable) -> None:
    """``trailing_timesteps(num_train, steps) -> list of steps ints``, from T - 1 down (noisiest first)."""
    for num_train, steps in ((1000, 10), (1000, 50), (1000, 3), (100, 7), (1000, 1), (10, 10)):
        got = call_student(trailing_timesteps, (num_train, steps), "trailing_timesteps")
        try:
            got = [int(t) for t in got]
        except (TypeError, ValueError):
            raise CheckFailed(f"trailing_timesteps should return a list of ints, got {got!r:.80}") from None
        expected = reference_trailing_timesteps(num_train, steps)
        leading = DDPM(linear_beta_schedule(num_train)).sampling_times(steps)[:-1]
        where = f"for {steps} steps of {num_train}"
        if got == expected:
            continue
        if got == leading and leading != expected:
            raise CheckFailed(f"{where} trailing_timesteps returned the leading spacing {leading[:3]}...: it "
                              f"never starts at the noisiest step {num_train - 1} (diffusers#2585); count down "
                              f"from T instead")
        if got == expected[::-1]:
            raise CheckFailed(f"{where} trailing_timesteps returned the steps cleanest first: a sampler starts at "
                              f"the noisiest, {expected[0]}")
        if got == [t + 1 for t in expected]:
            raise CheckFailed(f"{where} trailing_timesteps is off by one: its first step {got[0]} does not exist "
                              f"(timesteps run 0 .. {num_train - 1}); subtract 1")
        if len(got) != steps:
            raise CheckFailed(f"{where} trailing_timesteps returned {len(got)} timesteps, expected {steps}")
        raise CheckFailed(f"{where} trailing_timesteps returned {got[:5]}..., expected {expected[:5]}...")
    passed("trailing_timesteps matches diffusers' trailing spacing for 6 (T, steps) pairs")


# ----------------------------------------------------------------------------- Heun step

def _velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A smooth test velocity field whose value depends on both x and t (curved paths)."""
    t = t.reshape(-1, *[1] * (x.ndim - 1))
    return torch.sin(x) * (1 + t) - 0.5 * t**2 * x


def reference_heun_step(model_fn: Callable, x: torch.Tensor, t: float, s: float) -> torch.Tensor:
    """Heun's method from t to s: an Euler guess, then the average of the two velocities."""
    b = x.shape[0]
    v_t = model_fn(x, torch.full((b,), t, dtype=x.dtype))
    guess = x + (s - t) * v_t
    v_s = model_fn(guess, torch.full((b,), s, dtype=x.dtype))
    return x + (s - t) * (v_t + v_s) / 2


def check_heun_step(heun_step: Callable) -> None:
    """``heun_step(model_fn, x (B, ...), t, s) -> x at time s``: two model calls, second order."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = torch.from_numpy(rng.normal(size=(int(rng.integers(2, 5)), 3)))
        t = float(rng.uniform(0.3, 1.0))
        s = float(t - rng.uniform(0.05, 0.3))
        b = x.shape[0]
        got = to_numpy(call_student(heun_step, (_velocity, x, t, s), "heun_step"), "the result of heun_step")
        v_t = _velocity(x, torch.full((b,), t, dtype=x.dtype))
        guess = x + (s - t) * v_t
        v_guess_t = _velocity(guess, torch.full((b,), t, dtype=x.dtype))
        _diagnose(got, {
            "heun_step took one Euler step (x + (s - t) v(x, t), the package's RectifiedFlow.step): "
            "Heun evaluates the velocity again at the Euler guess and averages the two": guess,
            "heun_step used only the second velocity: average it with the first, (v_t + v_s) / 2":
                x + (s - t) * _velocity(guess, torch.full((b,), s, dtype=x.dtype)),
            "heun_step asked the model about the Euler guess at time t: the guess lives at time s":
                x + (s - t) * (v_t + v_guess_t) / 2,
            "heun_step stepped the wrong way in time: the step is (s - t) * v, and s < t":
                x + (t - s) * (v_t + _velocity(x + (t - s) * v_t, torch.full((b,), s, dtype=x.dtype))) / 2,
        })
        compare_arrays(got, reference_heun_step(_velocity, x, t, s), "heun_step")
    passed("heun_step matches Heun's method on 5 random states and time steps")
