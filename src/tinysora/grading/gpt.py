"""Checks for chapter 07's coding exercises (``tinysora.gpt``)."""

from __future__ import annotations

import numpy as np
import torch

from tinysora.gpt import gpt_parameter_count
from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy

# (vocab_size, n_layer, d_model, block_size): small ones first, then GPT-2 small and GPT-3 175B
_SHAPES = [(27, 2, 64, 32), (100, 1, 8, 5), (50257, 12, 768, 1024), (50257, 96, 12288, 2048), (7, 3, 20, 11)]


def check_gpt_parameter_count(student) -> None:
    """``gpt_params(vocab_size, n_layer, d_model, block_size)`` -> the exact count of a weight-tied GPT."""
    for v, n_layer, d, t in _SHAPES:
        got = call_student(student, (v, n_layer, d, t), "gpt_params")
        if isinstance(got, torch.Tensor):
            got = got.item()
        if not isinstance(got, (int, float, np.integer, np.floating)):
            raise CheckFailed(f"gpt_params should return a number, but it returned {type(got).__name__}")
        expected = gpt_parameter_count(v, n_layer, d, t)
        if got == expected:
            continue
        shape = f"for vocab_size={v}, n_layer={n_layer}, d_model={d}, block_size={t}"
        mistakes = {
            v * d: "the output head is tied to the token embedding: its V*D weights are already counted",
            -n_layer * 9 * d: "the linear layers' biases are missing (3D for qkv, D for the projection, 4D + D in the FFN)",
            -n_layer * 4 * d: "the two LayerNorms of each block are missing (a gain and a bias of D each)",
            -2 * d: "the final LayerNorm (2D) is missing",
            -t * d: "the learned position embedding (block_size * D) is missing",
            -n_layer * 13 * d: "every bias and LayerNorm parameter of the blocks is missing (13 D per block)",
            -(v * d + t * d): "the embeddings (V*D tokens + block_size*D positions) are missing",
        }
        for difference, message in mistakes.items():
            if got - expected == difference:
                raise CheckFailed(f"gpt_params is off by {difference:+d} {shape}: {message}")
        raise CheckFailed(f"gpt_params returned {got} {shape}, expected {expected} "
                          f"(off by {got - expected:+}; count each block as 12 D^2 + 13 D)")
    passed("gpt_params gives the exact count for 5 shapes, GPT-3 175B included")


def reference_top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def check_top_k_filter(student) -> None:
    """``top_k_filter(logits (B, V), k)`` -> logits with everything below the k-th largest set to -inf."""
    generator = torch.Generator().manual_seed(0)
    for b, vocab, k in ((1, 10, 3), (4, 27, 5), (3, 8, 1), (2, 6, 6)):
        logits = torch.randn(b, vocab, generator=generator) * 3
        got = call_student(student, (logits.clone(), k), "top_k_filter")
        expected = reference_top_k_filter(logits, k)
        array = to_numpy(got, "the result of top_k_filter")
        if array.shape != tuple(expected.shape):
            compare_arrays(array, expected, "top_k_filter")
        kept = np.isfinite(array)
        kept_per_row = kept.sum(axis=-1)
        if np.allclose(array, logits.softmax(-1).numpy(), atol=1e-6) or (
                np.isfinite(array).all() and np.allclose(array.sum(-1), 1.0) and k < vocab):
            raise CheckFailed("top_k_filter should return filtered logits, not probabilities: leave the softmax to the sampler")
        if (array == 0).any() and np.isfinite(array).all() and k < vocab:
            raise CheckFailed("top_k_filter sets the dropped logits to 0, but 0 is an ordinary logit that softmax "
                              "still gives probability to; set them to -inf")
        if (kept_per_row == k + 1).all() and k < vocab:
            raise CheckFailed(f"top_k_filter keeps k+1 = {k + 1} logits per row; keep exactly the k largest")
        if (kept_per_row == k - 1).all():
            raise CheckFailed(f"top_k_filter keeps k-1 = {k - 1} logits per row (masking logits <= the k-th "
                              "drops the k-th itself); mask only those strictly below it")
        if (kept_per_row == k).all() and not np.array_equal(kept, np.isfinite(expected.numpy())):
            raise CheckFailed("top_k_filter keeps k logits per row but not the k LARGEST ones "
                              "(filter along the last axis, keep the top of each row)")
        compare_arrays(np.where(kept, array, -1e30), torch.where(torch.isfinite(expected), expected,
                                                                    torch.tensor(-1e30)), "top_k_filter")
    passed("top_k_filter keeps exactly the k largest logits of each row")
