"""Checks for chapter 18's coding exercises: a causal video autoencoder's token count, and the time
of DDP's ring all-reduce.

Neither is in ``tinysora.scale``: its :func:`~tinysora.scale.video_tokens` groups every frame
alike, and the chapter never prices communication. Each check names the usual mistake in one
sentence, including the package's nearest function where it is not the answer.
"""

from __future__ import annotations

import math

from tinysora.grading.core import CheckFailed, call_student, passed
from tinysora.scale import video_tokens

# --------------------------------------------------------------------- tokens of a causal autoencoder


def reference_causal_video_tokens(frames: int, height: int, width: int, time_down: int = 4,
                                  space_down: int = 8, patch: int = 2) -> int:
    """The first frame is its own latent frame; every later ``time_down`` frames (a partial last group too) make one."""
    if height % (space_down * patch) or width % (space_down * patch):
        raise ValueError(f"a {height}x{width} frame does not split into latent patches of {space_down * patch} px")
    latent_frames = 1 + math.ceil((frames - 1) / time_down)
    return latent_frames * (height // (space_down * patch)) * (width // (space_down * patch))


_CAUSAL_CASES = [(1, 64, 64, 4, 8, 2), (16, 256, 256, 4, 8, 2), (48, 480, 720, 4, 8, 2), (10, 128, 64, 4, 8, 2),
                 (32, 64, 96, 8, 4, 4)]


def check_causal_video_tokens(student) -> None:
    """``causal_video_tokens(frames, height, width, time_down, space_down, patch)`` -> int."""
    name = "causal_video_tokens"
    for frames, height, width, time_down, space_down, patch in _CAUSAL_CASES:
        args = (frames, height, width, time_down, space_down, patch)
        got = call_student(student, args, name)
        expected = reference_causal_video_tokens(*args)
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != expected:
            per_frame = (height // (space_down * patch)) * (width // (space_down * patch))
            wrong = [
                (video_tokens(frames, 1, per_frame, frames_per_token=time_down),
                 "that is every frame grouped alike, ceil(T / time_down) latent frames (tinysora.scale.video_tokens "
                 "with frames_per_token); a causal autoencoder encodes the first frame on its own, then groups of "
                 "time_down: 1 + ceil((T - 1) / time_down)"),
                ((frames // time_down) * per_frame,
                 "floor division drops a partial last group and the first frame is not on its own: "
                 "1 + ceil((T - 1) / time_down) latent frames"),
                (frames * per_frame, "the autoencoder also compresses time: group the frames by time_down"),
                (expected * patch * patch, "each latent patch covers patch x patch latent pixels: divide the latent "
                                           "height and width by patch too"),
            ]
            hint = next((text for value, text in wrong if value == got and value != expected),
                        "count latent frames (1 + ceil((T - 1) / time_down)) times patches a latent frame "
                        "(H / (space_down * patch)) * (W / (space_down * patch))")
            raise CheckFailed(f"{name}{args} returned {got!r}, expected {expected}: {hint}")
    try:
        student(8, 100, 64, 4, 8, 2)
    except ValueError:
        pass
    except Exception as error:  # noqa: BLE001 (any other failure is the student's to fix)
        raise CheckFailed(f"{name} on a 100-pixel-high frame raised {type(error).__name__}; raise ValueError "
                          "when space_down * patch does not divide the frame") from None
    else:
        raise CheckFailed(f"{name} accepted a 100x64 frame, which 16-pixel latent patches do not tile; raise "
                          "ValueError instead of rounding")
    passed(f"{name} counts the tokens of {len(_CAUSAL_CASES)} clips and refuses a frame the patches do not tile")


# ----------------------------------------------------------------------------- ring all-reduce time


def reference_ring_allreduce_seconds(gradient_bytes: float, world_size: int, bytes_per_second: float) -> float:
    """Reduce-scatter then all-gather around a ring: each rank sends 2 (N - 1) / N of the gradients."""
    return 2 * (world_size - 1) / world_size * gradient_bytes / bytes_per_second


_RING_CASES = [(4e9, 8, 50e9), (1e9, 2, 25e9), (2.8e9, 64, 400e9), (1e6, 1, 1e9), (6e9, 4, 100e9)]


def check_ring_allreduce_seconds(student) -> None:
    """``ring_allreduce_seconds(gradient_bytes, world_size, bytes_per_second)`` -> float seconds."""
    name = "ring_allreduce_seconds"
    for size, world, bandwidth in _RING_CASES:
        got = call_student(student, (size, world, bandwidth), name)
        expected = reference_ring_allreduce_seconds(size, world, bandwidth)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isfinite(got):
            raise CheckFailed(f"{name} returned {got!r}; return the seconds as a number")
        if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-12):
            continue
        seconds = size / bandwidth
        wrong = [
            ((world - 1) / world * seconds, "that is only the reduce-scatter half: the all-gather sends as much again, "
                                            "2 (N - 1) / N of the gradients in all"),
            ((world - 1) * seconds, "that is a parameter server receiving every rank's full gradients; in a ring "
                                    "each rank sends 2 (N - 1) / N of them, whatever N"),
            (2 * seconds, "almost: each rank sends 2 (N - 1) / N of the gradients, not twice them "
                          "(N = 1 sends nothing)"),
            (seconds / world, "the ring does not divide the traffic by N: each rank sends 2 (N - 1) / N of the "
                              "gradients, close to twice them for large N"),
        ]
        hint = next((text for value, text in wrong if math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-12)),
                    "each rank sends 2 (N - 1) / N x gradient_bytes at bytes_per_second")
        raise CheckFailed(f"{name}({size:g}, {world}, {bandwidth:g}) returned {got:.4g} s, expected {expected:.4g} s: "
                          f"{hint}")
    passed(f"{name} matches the ring's 2 (N - 1) / N traffic for {len(_RING_CASES)} clusters")
