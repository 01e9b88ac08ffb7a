"""The chapter-17 checks accept right answers and explain the usual wrong ones."""

import math

import pytest
import torch

from tinysora.data import COLOUR_ZH, DIRECTION_ZH, SHAPE_ZH, parse_caption
from tinysora.grading import CheckFailed
from tinysora.grading import sora as grade
from tinysora.sora.recaption import parse_prompt

# ----------------------------------------------------------------------------- the speed parser

ZH_COLOUR = {v: k for k, v in COLOUR_ZH.items()}
ZH_SHAPE = {v: k for k, v in SHAPE_ZH.items()}
ZH_DIRECTION = {v: k for k, v in DIRECTION_ZH.items()}


def parse_right(text):
    text = text.strip()
    for speed, zh in (("quickly", "快速"), ("slowly", "慢速")):
        if text.endswith(" " + speed):
            combo = parse_caption(text[: -len(speed) - 1])
            return None if combo is None or text.count(" ") != 5 else (*combo, speed)
        if text.endswith(zh + "移动"):
            combo = parse_caption(text[: -len(zh) - 2] + "移动")
            return None if combo is None else (*combo, speed)
    combo = parse_caption(text)
    return None if combo is None else (*combo, None)


def test_parse_speed_caption_right_answers_pass(capsys):
    grade.check_parse_speed_caption(parse_right)
    grade.check_parse_speed_caption(grade.reference_parse_speed_caption)
    assert "rejects" in capsys.readouterr().out


def no_speed(text):
    combo = parse_caption(text)
    return None if combo is None else (*combo, None)


def english_only(text):
    return None if not text.strip().isascii() else parse_right(text)


@pytest.mark.parametrize("wrong, message", [
    (parse_caption, "returned None, but it is a valid caption with the speed word"),      # the package's parser
    (lambda text: parse_caption(text.strip()) or parse_caption(text.strip().rsplit(" ", 1)[0]), "3 values"),
    (no_speed, "valid caption with the speed word 'quickly'"),
    (english_only, "紫色"),
    (lambda text: (*parse_right(text)[:3], "quickly") if parse_right(text) else None, "read the speed as"),
    (lambda text: parse_right(text) or ("red", "circle", "left", None), "not a world caption"),
    (lambda text: {"colour": "red"}, "should return a tuple"),
    (lambda text: 1 / 0, "ZeroDivisionError"),
])
def test_parse_speed_caption_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_parse_speed_caption(wrong)


def test_parse_prompt_of_the_package_is_not_the_answer():
    with pytest.raises(CheckFailed):
        grade.check_parse_speed_caption(lambda text: tuple(parse_prompt(text).values()))


# ----------------------------------------------------------------------------- the connect window

def connect_right(clip_a, clip_b, between, window):
    if between < 1 or between > window - 2:
        raise ValueError("bad between")
    k_a = math.ceil((window - between) / 2)
    k_b = window - between - k_a
    if clip_a.shape[1] < k_a or clip_b.shape[1] < k_b:
        raise ValueError("clip too short")
    given = torch.zeros(clip_a.shape[0], window, *clip_a.shape[2:])
    given[:, :k_a] = clip_a[:, -k_a:]
    given[:, window - k_b:] = clip_b[:, :k_b]
    keep = torch.zeros(clip_a.shape[0], window, dtype=torch.bool)
    keep[:, :k_a] = True
    keep[:, window - k_b:] = True
    return given, keep


def test_connect_window_right_answers_pass(capsys):
    grade.check_connect_window(connect_right)
    grade.check_connect_window(grade.reference_connect_window)
    assert "refuses impossible windows" in capsys.readouterr().out


def first_of_a(a, b, between, window):
    given, keep = connect_right(a, b, between, window)
    k_a = int(keep[0].long().cumprod(0).sum())
    given[:, :k_a] = a[:, :k_a]
    return given, keep


def last_of_b(a, b, between, window):
    given, keep = connect_right(a, b, between, window)
    k_b = window - between - int(keep[0].long().cumprod(0).sum())
    given[:, window - k_b:] = b[:, b.shape[1] - k_b:]
    return given, keep


def floor_for_a(a, b, between, window):
    k_a = (window - between) // 2
    k_b = window - between - k_a
    given = torch.cat([a[:, a.shape[1] - k_a:], torch.zeros(a.shape[0], between, *a.shape[2:]), b[:, :k_b]], 1)
    keep = torch.ones(a.shape[0], window, dtype=torch.bool)
    keep[:, k_a:k_a + between] = False
    return given, keep


def noisy_gap(a, b, between, window):
    given, keep = connect_right(a, b, between, window)
    return torch.where(keep.reshape(*keep.shape, *[1] * (given.ndim - 2)), given, torch.ones_like(given)), keep


def no_checks(a, b, between, window):
    k_a = max(1, math.ceil((window - between) / 2))
    k_b = max(0, window - between - k_a)
    given = torch.zeros(a.shape[0], window, *a.shape[2:])
    keep = torch.zeros(a.shape[0], window, dtype=torch.bool)
    given[:, :k_a] = a[:, -k_a:][:, :k_a] if a.shape[1] >= k_a else 0
    keep[:, :k_a] = True
    if k_b:
        given[:, window - k_b:] = b[:, :k_b]
        keep[:, window - k_b:] = True
    return given, keep


@pytest.mark.parametrize("wrong, message", [
    (lambda a, b, n, w: (connect_right(a, b, n, w)[0], ~connect_right(a, b, n, w)[1]), "inverted"),
    (first_of_a, "FIRST frames of A"),
    (last_of_b, "LAST frames of B"),
    (lambda a, b, n, w: connect_right(b, a, n, w), "swapped"),
    (floor_for_a, "A gets the extra frame"),
    (noisy_gap, "zeros"),
    (lambda a, b, n, w: (connect_right(a, b, n, w)[0], connect_right(a, b, n, w)[1].float()), "bool tensor"),
    (lambda a, b, n, w: connect_right(a, b, n, w)[0], "pair"),
    (lambda a, b, n, w: (connect_right(a, b, n, w)[0][:, :-1], connect_right(a, b, n, w)[1]), "given has shape"),
    (no_checks, "should raise ValueError"),
    (lambda a, b, n, w: 1 / 0, "ZeroDivisionError"),
])
def test_connect_window_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_connect_window(wrong)
