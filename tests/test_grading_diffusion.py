import numpy as np
import pytest
import torch

from tinysora.diffusion import DDPM, RectifiedFlow, linear_beta_schedule
from tinysora.grading import CheckFailed
from tinysora.grading import diffusion as grade


def test_right_answers_pass():
    grade.check_x0_from_v(grade.reference_x0_from_v)
    grade.check_trailing_timesteps(grade.reference_trailing_timesteps)
    grade.check_trailing_timesteps(lambda T, n: [int(round(T - i * T / n)) - 1 for i in range(n)])
    grade.check_heun_step(grade.reference_heun_step)


def test_trailing_reference_equals_diffusers():
    from diffusers import DDIMScheduler

    for steps in (10, 50, 3, 1):
        scheduler = DDIMScheduler(timestep_spacing="trailing")
        scheduler.set_timesteps(steps)
        assert grade.reference_trailing_timesteps(1000, steps) == scheduler.timesteps.tolist()


def test_not_written_yet_is_reported():
    def stub(*args):
        raise NotImplementedError()

    for check in (grade.check_x0_from_v, grade.check_trailing_timesteps, grade.check_heun_step):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


@pytest.mark.parametrize("wrong, message", [
    (lambda x_t, v, abar: (x_t - (1 - abar).sqrt() * v) / abar.sqrt(), "treated v as the noise"),
    (lambda x_t, v, abar: abar.sqrt() * x_t + (1 - abar).sqrt() * v, "added the v term"),
    (lambda x_t, v, abar: (1 - abar).sqrt() * x_t - abar.sqrt() * v, "swapped the two coefficients"),
    (lambda x_t, v, abar: abar * x_t - (1 - abar) * v, "square root"),
    (lambda x_t, v, abar: (1 - abar).sqrt() * x_t + abar.sqrt() * v, "returned the noise"),
    (lambda x_t, v, abar: x_t[:1], "returned shape"),
    (lambda x_t, v, abar: 1 / 0, "raised ZeroDivisionError"),
    (lambda x_t, v, abar: "x0", "should be an array"),
])
def test_x0_from_v_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_x0_from_v(wrong)


@pytest.mark.parametrize("wrong, message", [
    (lambda T, n: DDPM(linear_beta_schedule(T)).sampling_times(n)[:-1], "leading spacing"),
    (lambda T, n: grade.reference_trailing_timesteps(T, n)[::-1], "cleanest first"),
    (lambda T, n: [t + 1 for t in grade.reference_trailing_timesteps(T, n)], "off by one"),
    (lambda T, n: grade.reference_trailing_timesteps(T, n)[:-1] if n > 1 else [0, 1], "timesteps, expected"),
    (lambda T, n: [T - 1 - i * (T // n) for i in range(n)], "expected"),
    (lambda T, n: None, "list of ints"),
])
def test_trailing_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_trailing_timesteps(wrong)


def euler(model_fn, x, t, s):
    return RectifiedFlow().step(x, model_fn(x, torch.full((x.shape[0],), t, dtype=x.dtype)), t, s)


def second_only(model_fn, x, t, s):
    b = x.shape[0]
    guess = euler(model_fn, x, t, s)
    return x + (s - t) * model_fn(guess, torch.full((b,), s, dtype=x.dtype))


def guess_at_t(model_fn, x, t, s):
    b = x.shape[0]
    v = model_fn(x, torch.full((b,), t, dtype=x.dtype))
    return x + (s - t) * (v + model_fn(x + (s - t) * v, torch.full((b,), t, dtype=x.dtype))) / 2


def backwards(model_fn, x, t, s):                    # dt = t - s instead of s - t
    b = x.shape[0]
    v = model_fn(x, torch.full((b,), t, dtype=x.dtype))
    return x + (t - s) * (v + model_fn(x + (t - s) * v, torch.full((b,), s, dtype=x.dtype))) / 2


@pytest.mark.parametrize("wrong, message", [
    (euler, "one Euler step"),
    (second_only, "only the second velocity"),
    (guess_at_t, "at time t"),
    (backwards, "wrong way in time"),
    (lambda f, x, t, s: grade.reference_heun_step(f, x, t, s) + 1e-3, "off by"),
    (lambda f, x, t, s: np.zeros(3), "returned shape"),
])
def test_heun_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_heun_step(wrong)
