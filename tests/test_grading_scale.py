"""The chapter-18 checks accept right answers and explain the usual wrong ones in one sentence."""

import math

import pytest

from tinysora.grading import CheckFailed
from tinysora.grading import scale as grade


def causal_right(frames, height, width, time_down=4, space_down=8, patch=2):
    cell = space_down * patch
    if height % cell or width % cell:
        raise ValueError("patches do not tile the frame")
    return (1 + -(-(frames - 1) // time_down)) * (height // cell) * (width // cell)


def test_causal_tokens_right_answer_passes(capsys):
    grade.check_causal_video_tokens(causal_right)
    assert "refuses a frame" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda f, h, w, td, sd, p: -(-f // td) * (h // (sd * p)) * (w // (sd * p)), "tinysora.scale.video_tokens"),
    (lambda f, h, w, td, sd, p: (1 + (f - 1) // td) * (h // (sd * p)) * (w // (sd * p)), "grouped alike"),
    (lambda f, h, w, td, sd, p: (f // td) * (h // (sd * p)) * (w // (sd * p)), "floor division"),
    (lambda f, h, w, td, sd, p: f * (h // (sd * p)) * (w // (sd * p)), "compresses time"),
    (lambda f, h, w, td, sd, p: (1 + -(-(f - 1) // td)) * (h // sd) * (w // sd), "divide the latent height"),
    (lambda f, h, w, td, sd, p: 7, "count latent frames"),
])
def test_causal_tokens_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_causal_video_tokens(wrong)


def test_causal_tokens_must_refuse_untiled_frames():
    def rounds(frames, height, width, time_down=4, space_down=8, patch=2):
        cell = space_down * patch
        return (1 + -(-(frames - 1) // time_down)) * (height // cell) * (width // cell)
    with pytest.raises(CheckFailed, match="raise ValueError instead of rounding"):
        grade.check_causal_video_tokens(rounds)


def test_causal_tokens_not_written_and_crashing():
    def todo(*args):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_causal_video_tokens(todo)
    with pytest.raises(CheckFailed, match="ZeroDivisionError"):
        grade.check_causal_video_tokens(lambda *args: 1 / 0)


def ring_right(size, world, bandwidth):
    return 2 * (world - 1) / world * size / bandwidth


def test_ring_right_answer_passes(capsys):
    grade.check_ring_allreduce_seconds(ring_right)
    assert "2 (N - 1) / N" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda s, n, b: (n - 1) / n * s / b, "reduce-scatter half"),
    (lambda s, n, b: (n - 1) * s / b, "parameter server"),
    (lambda s, n, b: 2 * s / b, "not twice them"),
    (lambda s, n, b: s / b / n, "does not divide the traffic"),
    (lambda s, n, b: math.nan, "as a number"),
    (lambda s, n, b: "fast", "as a number"),
])
def test_ring_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_ring_allreduce_seconds(wrong)
