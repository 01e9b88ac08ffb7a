"""Checks for chapter 17's coding exercises: a caption parser with a new attribute (speed), and the
frame window that connects two clips.

Neither is in the package: :func:`tinysora.data.parse_caption` knows three attributes and
:func:`tinysora.sora.recaption.parse_prompt` only short prompts; the chapter's frame masks keep the
head or the tail of one clip, not the end of one and the start of another. Each check names the
usual mistake in one sentence.
"""

from __future__ import annotations

import math

import torch

from tinysora.data import COLOUR_ZH, DIRECTION_ZH, SHAPE_ZH, caption_en, caption_zh
from tinysora.grading.core import CheckFailed, call_student, passed

SPEEDS = ("slowly", "quickly")
SPEED_ZH = {"slowly": "慢速", "quickly": "快速"}


# ----------------------------------------------------------------------------- a fourth attribute


def speed_caption_en(colour: str, shape: str, direction: str, speed: str | None) -> str:
    """``"a red circle moves left quickly"`` (no speed: the world's usual caption)."""
    return caption_en(colour, shape, direction) + ("" if speed is None else f" {speed}")


def speed_caption_zh(colour: str, shape: str, direction: str, speed: str | None) -> str:
    """``"红色的圆向左快速移动"`` (the speed word before 移动)."""
    if speed is None:
        return caption_zh(colour, shape, direction)
    return f"{COLOUR_ZH[colour]}的{SHAPE_ZH[shape]}向{DIRECTION_ZH[direction]}{SPEED_ZH[speed]}移动"


def reference_parse_speed_caption(text: str):
    """(colour, shape, direction, speed or None) of a caption with an optional speed word, else None."""
    from itertools import product

    from tinysora.data import ALL_COMBOS

    text = text.strip()
    for combo, speed in product(ALL_COMBOS, (None, *SPEEDS)):
        if text in (speed_caption_en(*combo, speed), speed_caption_zh(*combo, speed)):
            return (*combo, speed)
    return None


_CASES = [
    ("a red circle moves left quickly", ("red", "circle", "left", "quickly")),
    ("a cyan triangle moves up slowly", ("cyan", "triangle", "up", "slowly")),
    ("a blue square moves down", ("blue", "square", "down", None)),
    ("  a green circle moves right slowly ", ("green", "circle", "right", "slowly")),
    ("紫色的三角形向右快速移动", ("purple", "triangle", "right", "quickly")),
    ("黄色的正方形向下慢速移动", ("yellow", "square", "down", "slowly")),
    ("红色的圆向左移动", ("red", "circle", "left", None)),
]
_NOT_CAPTIONS = ["a red circle moves left fast", "a red circle quickly moves left", "a red circle",
                 "a pink circle moves left slowly", "红色的圆向左飞快移动", "quickly"]


def check_parse_speed_caption(student) -> None:
    """``parse_speed_caption(text)`` -> ``(colour, shape, direction, speed)``, speed ``None`` when the
    caption has none; ``None`` for a text that is not such a caption (English or Chinese)."""
    name = "parse_speed_caption"
    for text, want in _CASES:
        got = call_student(student, (text,), name)
        if got is not None and not isinstance(got, (tuple, list)):
            raise CheckFailed(f"{name}({text!r}) should return a tuple (colour, shape, direction, speed), "
                              f"got {type(got).__name__}")
        if got is not None and len(got) == 3:
            raise CheckFailed(f"{name}({text!r}) returned 3 values: the 4th, the speed, is missing "
                              "(None when the caption names no speed)")
        if got is None:
            what = "no speed word" if want[3] is None else f"the speed word {want[3]!r}"
            raise CheckFailed(f"{name}({text!r}) returned None, but it is a valid caption with {what}")
        if tuple(got) != want:
            if tuple(got)[:3] == want[:3]:
                raise CheckFailed(f"{name}({text!r}) read the speed as {tuple(got)[3]!r}, expected {want[3]!r}")
            raise CheckFailed(f"{name}({text!r}) returned {tuple(got)}, expected {want}")
    for text in _NOT_CAPTIONS:
        got = call_student(student, (text,), name)
        if got is not None:
            raise CheckFailed(f"{name}({text!r}) returned {got}, but that is not a world caption "
                              "(return None, as tinysora.data.parse_caption does)")
    passed(f"{name} reads {len(_CASES)} captions with and without a speed (English and Chinese) and "
           f"rejects {len(_NOT_CAPTIONS)} that are not captions")


# ----------------------------------------------------------------------------- connecting two clips


def reference_connect_window(clip_a: torch.Tensor, clip_b: torch.Tensor, between: int, window: int):
    """The last ceil((window - between) / 2) frames of A, ``between`` empty frames, the first
    floor((window - between) / 2) frames of B: given (N, window, ...) and keep (N, window) bool."""
    if not 1 <= between <= window - 2:
        raise ValueError(f"between must be in [1, window - 2] = [1, {window - 2}], got {between}")
    k_a = math.ceil((window - between) / 2)
    k_b = window - between - k_a
    if clip_a.shape[1] < k_a or clip_b.shape[1] < k_b:
        raise ValueError(f"the window needs {k_a} frames of A and {k_b} of B")
    n = clip_a.shape[0]
    empty = clip_a.new_zeros(n, between, *clip_a.shape[2:])
    given = torch.cat([clip_a[:, clip_a.shape[1] - k_a:], empty, clip_b[:, :k_b]], dim=1)
    keep = torch.zeros(n, window, dtype=torch.bool)
    keep[:, :k_a] = True
    keep[:, k_a + between:] = True
    return given, keep


def _raises_value_error(student, args, name) -> bool:
    try:
        student(*args)
    except ValueError:
        return True
    except Exception:  # noqa: BLE001 - any other exception is the wrong kind
        return False
    return False


def check_connect_window(student) -> None:
    """``connect_window(clip_a (N, Ta, ...), clip_b (N, Tb, ...), between, window)`` -> (given, keep)."""
    name = "connect_window"
    generator = torch.Generator().manual_seed(0)
    for n, t_a, t_b, between, window, rest in [(2, 6, 5, 4, 8, (4, 2, 2)), (1, 8, 8, 3, 8, (3, 4, 4)),
                                                (3, 3, 4, 2, 6, (2,)), (2, 9, 2, 5, 8, (1, 3, 3))]:
        a = torch.rand(n, t_a, *rest, generator=generator) + 1          # > 0, so an empty frame is visible
        b = torch.rand(n, t_b, *rest, generator=generator) + 1
        result = call_student(student, (a, b, between, window), name)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed(f"{name} should return the pair (given, keep), got {type(result).__name__}")
        given, keep = result
        want_given, want_keep = reference_connect_window(a, b, between, window)
        if not isinstance(keep, torch.Tensor) or not isinstance(given, torch.Tensor):
            raise CheckFailed(f"{name} should return two tensors, got {type(given).__name__}, {type(keep).__name__}")
        if tuple(given.shape) != tuple(want_given.shape):
            raise CheckFailed(f"given has shape {tuple(given.shape)}, expected {tuple(want_given.shape)}: "
                              f"(N, window, ...) with window = {window}")
        if tuple(keep.shape) != tuple(want_keep.shape) or keep.dtype != torch.bool:
            raise CheckFailed(f"keep should be a bool tensor of shape {tuple(want_keep.shape)}, "
                              f"got {keep.dtype} {tuple(keep.shape)}")
        if torch.equal(keep, ~want_keep):
            raise CheckFailed("keep is inverted: True marks the frames that are GIVEN (kept), not the ones to fill")
        k_a = int(want_keep[0].long().cumprod(0).sum())
        if not torch.equal(keep, want_keep):
            counts = (int(keep[0].long().cumprod(0).sum()), int(keep[0].flip(0).long().cumprod(0).sum()))
            raise CheckFailed(f"keep gives {counts[0]} frames of A and {counts[1]} of B, expected {k_a} and "
                              f"{window - between - k_a}: A gets the extra frame, ceil((window - between) / 2)")
        if (k_a < t_a and torch.allclose(given[:, :k_a], a[:, :k_a])
                and not torch.allclose(a[:, :k_a], a[:, t_a - k_a:])):
            raise CheckFailed("the window starts with the FIRST frames of A; it must end A: take its last frames")
        if torch.allclose(given[:, :k_a], b[:, b.shape[1] - k_a:] if b.shape[1] >= k_a else b[:, :0]):
            raise CheckFailed("A and B are swapped: the window runs from the end of A to the start of B")
        k_b = window - between - k_a
        if (k_b < t_b and torch.allclose(given[:, k_a + between:], b[:, t_b - k_b:])
                and not torch.allclose(b[:, :k_b], b[:, t_b - k_b:])):
            raise CheckFailed("the window ends with the LAST frames of B; it must lead into B: take its first frames")
        if not torch.equal(given[:, k_a:k_a + between], want_given[:, k_a:k_a + between]):
            raise CheckFailed("the frames to fill should hold zeros in given (the sampler overwrites them)")
        if not torch.equal(given, want_given):
            raise CheckFailed(f"{name}'s given frames are not the clips' frames in order (A's end, empty, B's start)")
    a, b = torch.rand(1, 8, 2), torch.rand(1, 8, 2)
    for between, window in [(0, 8), (7, 8), (9, 8)]:
        if not _raises_value_error(student, (a, b, between, window), name):
            raise CheckFailed(f"{name}(..., between={between}, window={window}) should raise ValueError: "
                              "the window needs at least one frame of each clip and one to fill")
    if not _raises_value_error(student, (a[:, :1], b, 2, 8), name):
        raise CheckFailed(f"{name} should raise ValueError when clip A is shorter than the frames it must give")
    passed(f"{name} builds the window and its mask for 4 shapes and refuses impossible windows")
