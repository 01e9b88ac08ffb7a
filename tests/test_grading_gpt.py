"""Checks of chapter 07's exercises: a right answer passes, each typical mistake gets its sentence."""

import pytest
import torch

from tinysora.grading import CheckFailed
from tinysora.grading import gpt as grade


def params_right(vocab_size, n_layer, d_model, block_size):
    d = d_model
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (4 * d * d + 4 * d) + (4 * d * d + d)
    return vocab_size * d + block_size * d + n_layer * block + 2 * d


@pytest.mark.parametrize("wrong, message", [
    (lambda v, n, d, t: params_right(v, n, d, t) + v * d, "tied to the token embedding"),
    (lambda v, n, d, t: params_right(v, n, d, t) - n * 9 * d, "biases are missing"),
    (lambda v, n, d, t: params_right(v, n, d, t) - n * 4 * d, "two LayerNorms"),
    (lambda v, n, d, t: params_right(v, n, d, t) - 2 * d, "final LayerNorm"),
    (lambda v, n, d, t: params_right(v, n, d, t) - t * d, "position embedding"),
    (lambda v, n, d, t: 12 * n * d * d, "embeddings|off by"),
    (lambda v, n, d, t: "many", "should return a number"),
])
def test_parameter_count_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_gpt_parameter_count(wrong)


def test_parameter_count_right_answer_passes(capsys):
    grade.check_gpt_parameter_count(params_right)
    grade.check_gpt_parameter_count(lambda *a: torch.tensor(params_right(*a)))
    assert "GPT-3 175B" in capsys.readouterr().out


def filter_right(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[:, -1:]
    return torch.where(logits < kth, torch.tensor(float("-inf")), logits)


def filter_zero(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[:, -1:]
    return torch.where(logits < kth, torch.tensor(0.0), logits)


def filter_drops_kth(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[:, -1:]
    return torch.where(logits <= kth, torch.tensor(float("-inf")), logits)


def filter_keeps_extra(logits, k):
    return filter_right(logits, min(k + 1, logits.shape[-1]))


def filter_wrong_axis(logits, k):
    kth = torch.topk(logits, 1, dim=0).values
    out = torch.where(logits < kth, torch.tensor(float("-inf")), logits)
    return out if logits.shape[0] > 1 else filter_right(logits, k)[:, torch.randperm(logits.shape[1])]


def filter_probs(logits, k):
    return filter_right(logits, k).softmax(-1)


def test_top_k_filter_right_answer_passes(capsys):
    grade.check_top_k_filter(filter_right)
    assert "k largest" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (filter_zero, "0 is an ordinary logit"),
    (filter_drops_kth, "keeps k-1"),
    (filter_keeps_extra, "keeps k\\+1"),
    (filter_probs, "not probabilities"),
    (lambda logits, k: logits[:, :k], "returned shape"),
    (filter_wrong_axis, "not the k LARGEST|keeps"),
])
def test_top_k_filter_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_top_k_filter(wrong)
