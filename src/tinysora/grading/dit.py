"""Checks for chapter 14's coding exercises (``tinysora.dit``)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from einops import rearrange

from tinysora import dit
from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.video.patches import unpatchify

# ----------------------------------------------------------------------------- parameter count from the config


_COUNTS: dict[str, tuple[int, int]] = {}


def _count(config: dit.DiTConfig) -> tuple[int, int]:
    """(all parameters, bias parameters) of a DiT, counted on the meta device (no memory), cached."""
    key = repr(config)
    if key not in _COUNTS:
        with torch.device("meta"):
            named = list(dit.DiT(config).named_parameters())
        _COUNTS[key] = (sum(p.numel() for _, p in named), sum(p.numel() for n, p in named if n.endswith("bias")))
    return _COUNTS[key]


def reference_dit_parameters(config: dit.DiTConfig) -> int:
    """Parameters of an adaLN-Zero :class:`tinysora.dit.DiT`, counted on the meta device."""
    return _count(config)[0]


def _configs() -> list[dit.DiTConfig]:
    return [dit.DiTConfig(image_size=8, channels=1, patch=2, dim=32, depth=2, heads=4, num_classes=10),
            dit.DiTConfig(image_size=16, channels=3, patch=4, dim=48, depth=3, heads=6, num_classes=7,
                          learn_sigma=True),
            dit.DiTConfig(image_size=12, channels=2, patch=3, dim=64, depth=1, heads=8, num_classes=1,
                          mlp_ratio=2.0),
            dit.dit_config("XL/2"), dit.dit_config("S/8")]


def _mistakes(c: dit.DiTConfig, right: int) -> dict[str, int]:
    d, p2 = c.dim, c.patch * c.patch
    biases = _count(c)[1]
    mistakes = {
        "the label table has num_classes + 1 rows: the extra one is the null label that classifier-free "
        "guidance trains (LabelEmbedder)": right - d,
        "an adaLN-Zero block regresses six vectors of size D (shift, scale and gate for attention and for the "
        "MLP), not four": right - c.depth * (2 * d * d + 2 * d),
        "the final layer has its own adaLN (shift and scale: a Linear from D to 2D)": right - (2 * d * d + 2 * d),
        "the timestep embedder is a 256 -> D -> D MLP (two Linear layers with biases)":
            right - (256 * d + d + d * d + d),
        "the sin-cos positions are fixed (a buffer), not parameters: do not count N * D of them": right + c.tokens * d,
        "every Linear (and the patch embedding) has a bias too": right - biases,
    }
    if c.learn_sigma:
        mistakes["with learn_sigma the final Linear outputs p * p * 2C values (noise and variance), not p * p * C"] = \
            right - (d * p2 + p2) * c.channels
    return mistakes


def check_dit_parameters(dit_parameters: Callable[[dit.DiTConfig], int]) -> None:
    """``dit_parameters(config) -> int``: the parameter count of an adaLN-Zero DiT from its config alone."""
    original_init = dit.DiT.__init__

    def refuse(self, *args, **kwargs):
        raise RuntimeError("derive the count from the config: building a DiT (DiT-XL/2 has 675M parameters) "
                           "is what the formula avoids")

    for config in _configs():
        right = reference_dit_parameters(config)
        dit.DiT.__init__ = refuse
        try:
            got = call_student(dit_parameters, (config,), "dit_parameters")
        finally:
            dit.DiT.__init__ = original_init
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, np.integer, float)) or isinstance(got, bool) or not math.isfinite(got):
            raise CheckFailed(f"dit_parameters should return a number, got {type(got).__name__}")
        if got == right:
            continue
        for message, wrong in _mistakes(config, right).items():
            if got == wrong:
                raise CheckFailed(message)
        raise CheckFailed(f"dit_parameters gives {int(got):,} for depth {config.depth}, width {config.dim}, patch "
                          f"{config.patch}, {config.channels} channels, {config.num_classes} classes; the model has "
                          f"{right:,} (off by {int(got) - right:+,})")
    passed(f"dit_parameters matches the model's count on {len(_configs())} configurations, DiT-XL/2 included "
           f"({reference_dit_parameters(dit.dit_config('XL/2')):,})")


# ----------------------------------------------------------------------------- unpatchify for images


def reference_unpatchify_image(tokens: torch.Tensor, channels: int, patch: int) -> torch.Tensor:
    """(B, N, p * p * C) tokens of a square image -> (B, C, H, W), the inverse of DiT's patch order."""
    grid = math.isqrt(tokens.shape[1])
    return unpatchify(tokens, (1, grid, grid), (1, patch, patch))[:, 0]


def check_unpatchify_image(unpatchify_image: Callable[[torch.Tensor, int, int], torch.Tensor]) -> None:
    """``unpatchify_image(tokens (B, N, p*p*C), channels, patch) -> images (B, C, H, W)``, square images."""
    generator = torch.Generator().manual_seed(0)
    for b, c, p, g in ((2, 3, 2, 3), (1, 4, 4, 2), (3, 1, 2, 4), (2, 2, 3, 2)):
        tokens = torch.randn(b, g * g, p * p * c, generator=generator)
        right = reference_unpatchify_image(tokens, c, p)
        got = to_numpy(call_student(unpatchify_image, (tokens, c, p), "unpatchify_image"),
                       "the result of unpatchify_image")
        if got.shape == (b, 1, c, g * p, g * p):
            raise CheckFailed("unpatchify_image returned (B, 1, C, H, W): images have no frame axis; "
                              "return (B, C, H, W)")
        pattern = "b (h w) ({}) -> b c (h p) (w q)"
        mistakes = {
            "each token holds its pixels channel-last, (p, q, C) as patchify writes them (DiT's einsum "
            "'nhwpqc'); you read them channel-first, (C, p, q)":
                rearrange(tokens, pattern.format("c p q"), h=g, p=p, q=p),
            "inside a patch the values run row by row (p rows, then q columns); you swapped p and q":
                rearrange(tokens, pattern.format("q p c"), h=g, p=p, q=p),
            "the tokens run row by row over the grid (h outer, w inner); you placed them column by column":
                rearrange(tokens, "b (w h) (p q c) -> b c (h p) (w q)", h=g, p=p, q=p),
            "a plain reshape to (B, C, H, W) does not undo patchify: the values of one patch are a p x p square "
            "of the image, not a run of one row": tokens.reshape(b, c, g * p, g * p),
        }
        for message, wrong in mistakes.items():
            if torch.equal(wrong, right):                  # e.g. one channel: channel order cannot be wrong
                continue
            if got.shape == tuple(wrong.shape) and np.allclose(got, wrong.numpy(), atol=1e-6):
                raise CheckFailed(message)
        compare_arrays(got, right, "unpatchify_image")
    passed("unpatchify_image inverts the patch order on 4 shapes (1 to 4 channels, patches 2 to 4)")
