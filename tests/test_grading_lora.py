"""The chapter-15 checks accept right answers and explain the usual wrong ones."""

import numpy as np
import pytest
import torch

from tinysora.grading import CheckFailed
from tinysora.grading import lora as grade


def grads_right(x, g, a, b, s):
    return s * b.T @ g.T @ x, s * g.T @ (x @ a.T)


def test_lora_grads_right_answer_passes_and_agrees_with_autograd(capsys):
    grade.check_lora_grads(grads_right)
    assert "chain rule" in capsys.readouterr().out
    x, g = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    a = torch.randn(2, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    (1.5 * (x @ a.T) @ b.T * g).sum().backward()
    want_a, want_b = grads_right(x.numpy(), g.numpy(), a.detach().numpy(), b.detach().numpy(), 1.5)
    np.testing.assert_allclose(a.grad.numpy(), want_a)
    np.testing.assert_allclose(b.grad.numpy(), want_b)


@pytest.mark.parametrize("wrong, message", [
    (lambda x, g, a, b, s: grads_right(x, g, a, b, s)[::-1], "returned \\(grad_B, grad_A\\)"),
    (lambda x, g, a, b, s: (b.T @ g.T @ x, g.T @ (x @ a.T)), "missing the factor"),
    (lambda x, g, a, b, s: (grads_right(x, g, a, b, s)[0].T, grads_right(x, g, a, b, s)[1]), "transposed"),
    (lambda x, g, a, b, s: (s * x.T @ g, grads_right(x, g, a, b, s)[1]), "shape"),
    (lambda x, g, a, b, s: grads_right(x, g, a, b, s)[0], "pair"),
])
def test_lora_grads_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_lora_grads(wrong)


def from_update_right(delta, rank):
    u, s, vt = np.linalg.svd(delta, full_matrices=False)
    return u[:, :rank] * s[:rank], vt[:rank]


def test_lora_from_update_right_answers_pass(capsys):
    grade.check_lora_from_update(from_update_right)
    grade.check_lora_from_update(lambda d, r: grade.reference_lora_from_update(d, r))
    assert "truncated SVD" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda d, r: from_update_right(d, r)[::-1], "returned \\(A, B\\)"),
    (lambda d, r: (np.linalg.svd(d)[0][:, :r], np.linalg.svd(d)[2][:r]), "drops the singular values"),
    (lambda d, r: (np.linalg.svd(d, full_matrices=False)[0][:, -r:] * np.linalg.svd(d)[1][-r:],
                   np.linalg.svd(d, full_matrices=False)[2][-r:]), "smallest singular values"),
    (lambda d, r: (np.zeros((d.shape[0], r)), np.zeros((r, d.shape[1]))), "off by"),
    (lambda d, r: 1 / 0, "ZeroDivisionError"),
])
def test_lora_from_update_mistakes_are_explained(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_lora_from_update(wrong)
