"""Checks for chapter 13's coding exercises: DiT's unpatchify and the KL between two Gaussians.

Neither is in the package: ``tinysora.vit.unpatchify`` reads tokens in (c p q) order, DiT's are
(p q c); ``tinysora.autoencoder.gaussian_kl`` measures against N(0, 1) only. Each check compares
with a reference on fresh inputs and, for a wrong answer, names the mistake in one sentence.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.vit import unpatchify


def _close(got: np.ndarray, candidate) -> bool:
    candidate = to_numpy(candidate, "a candidate")
    with np.errstate(invalid="ignore"):
        return got.shape == candidate.shape and np.allclose(got, candidate, atol=1e-6, rtol=1e-5)


def _diagnose(got: np.ndarray, expected, name: str, wrong_answers: dict[str, object]) -> None:
    """Compare with the reference; if it is wrong, say which known mistake it matches, if any."""
    if not _close(got, expected):
        for message, candidate in wrong_answers.items():
            if _close(got, candidate):
                raise CheckFailed(f"{name}: {message}")
    compare_arrays(got, expected, name)


# ----------------------------------------------------------------------------- DiT's unpatchify


def reference_unpatchify_pqc(tokens: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    p = patch_size
    return rearrange(tokens, "b (h w) (p q c) -> b c (h p) (w q)", h=height // p, p=p, q=p)


# (batch, channels, height, width, patch): non-square grids and C > 1 tell the orders apart
_UNPATCHIFY_CASES = [(2, 3, 4, 6, 2), (1, 4, 6, 9, 3), (3, 2, 8, 4, 2), (1, 1, 4, 8, 2)]


def check_unpatchify_pqc(student) -> None:
    """``unpatchify_pqc(tokens (B, N, p*p*C), patch_size, height, width) -> (B, C, height, width)``."""
    rng = np.random.default_rng(0)
    name = "unpatchify_pqc"
    for b, c, h, w, p in _UNPATCHIFY_CASES:
        tokens = torch.tensor(rng.normal(size=(b, (h // p) * (w // p), p * p * c)), dtype=torch.float32)
        got = to_numpy(call_student(student, (tokens, p, h, w), name), f"the result of {name}")
        grid = dict(h=h // p, p=p, q=p)
        wrong = {
            "it reads each token's values in (c p q) order: that is tinysora.vit.unpatchify, for the chapter's "
            "layout; DiT's final layer writes them as (p q c), channels last":
                unpatchify(tokens, p, h, w),
            "every patch comes out transposed: the token's values are (p q c), row p before column q":
                rearrange(tokens, "b (h w) (q p c) -> b c (h p) (w q)", **grid),
            "the patches are placed column by column: tokens run row by row, so N splits as (h w), h = height / p":
                rearrange(tokens, "b (w h) (p q c) -> b c (h p) (w q)", w=w // p, p=p, q=p),
            "the pixels are interleaved: a row of the image is (h p), patch row first, then the row inside "
            "the patch, not (p h)":
                rearrange(tokens, "b (h w) (p q c) -> b c (p h) (q w)", **grid),
        }
        _diagnose(got, reference_unpatchify_pqc(tokens, p, h, w), name, wrong)
    passed(f"{name} puts DiT's tokens back in place on {len(_UNPATCHIFY_CASES)} grids")


# ----------------------------------------------------------------------------- KL between two diagonal Gaussians


def reference_kl_diagonal_gaussians(mean1, logvar1, mean2, logvar2):
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))) of every value."""
    return 0.5 * (logvar2 - logvar1 + (np.exp(logvar1) + (mean1 - mean2) ** 2) / np.exp(logvar2) - 1)


def check_kl_diagonal_gaussians(student) -> None:
    """``kl_diagonal_gaussians(mean1, logvar1, mean2, logvar2)``, NumPy arrays of one shape -> that shape."""
    rng = np.random.default_rng(1)
    name = "kl_diagonal_gaussians"
    ref = reference_kl_diagonal_gaussians
    for shape in [(5,), (3, 4), (2, 2, 3)]:
        m1, m2 = rng.normal(size=shape), rng.normal(size=shape)
        lv1, lv2 = rng.normal(size=shape), rng.normal(size=shape)
        got = to_numpy(call_student(student, (m1, lv1, m2, lv2), name), f"the result of {name}")
        expected = ref(m1, lv1, m2, lv2)
        if got.shape == () and expected.size > 1:
            for what, value in (("mean", expected.mean()), ("sum", expected.sum())):
                if np.isclose(got, value):
                    raise CheckFailed(f"{name} returned the {what} of the KL: return the KL of every value, "
                                      "an array of the inputs' shape (the caller decides how to reduce it)")
        wrong = {
            "it ignores the second Gaussian: that is the KL to N(0, 1), as tinysora.autoencoder.gaussian_kl "
            "computes; use mean2 and logvar2":
                ref(m1, lv1, 0 * m2, 0 * lv2),
            "it treats logvar as log sigma: logvar is log sigma^2, so the variance is exp(logvar), "
            "not exp(2 logvar)":
                ref(m1, 2 * lv1, m2, 2 * lv2),
            "it is twice the KL: the formula starts with a factor 1/2":
                2 * expected,
            "it computes KL(N2 || N1): KL is not symmetric; the first Gaussian is the one the expectation "
            "is taken over":
                ref(m2, lv2, m1, lv1),
            "the squared mean difference must be divided by the second variance, exp(logvar2)":
                0.5 * (lv2 - lv1 + np.exp(lv1) / np.exp(lv2) + (m1 - m2) ** 2 - 1),
        }
        _diagnose(got, expected, name, wrong)
    passed(f"{name} matches the closed form on 3 random inputs")
