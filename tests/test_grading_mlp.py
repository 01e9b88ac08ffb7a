import numpy as np
import pytest

from tinysora.grading import CheckFailed
from tinysora.grading import mlp as grade


def dense_backward_by_hand(x, W, b, grad_out):
    grad_pre = grad_out * (x @ W + b > 0)
    return grad_pre @ W.T, x.T @ grad_pre, grad_pre.sum(0)


def test_right_answers_pass():
    grade.check_dense_backward(grade.reference_dense_backward)
    grade.check_dense_backward(dense_backward_by_hand)
    grade.check_swiglu_ffn(grade.reference_swiglu_ffn)


def test_backward_without_the_relu_mask_is_named():
    with pytest.raises(CheckFailed, match="ignores the ReLU"):
        grade.check_dense_backward(lambda x, W, b, g: (g @ W.T, x.T @ g, g.sum(0)))


def test_unsummed_bias_gradient_is_named():
    def per_row_bias(x, W, b, g):
        gx, gW, _ = dense_backward_by_hand(x, W, b, g)
        return gx, gW, g * (x @ W + b > 0)

    with pytest.raises(CheckFailed, match="sum its gradient over the batch"):
        grade.check_dense_backward(per_row_bias)


def test_transposed_weight_gradient_is_caught():
    def transposed(x, W, b, g):
        gx, gW, gb = dense_backward_by_hand(x, W, b, g)
        return gx, gW.T, gb

    with pytest.raises(CheckFailed, match="grad_W.*shape"):
        grade.check_dense_backward(transposed)


def test_plain_ffn_is_rejected_as_swiglu():
    with pytest.raises(CheckFailed, match="plain FFN"):
        grade.check_swiglu_ffn(lambda x, wg, wu, wd: np.maximum(x @ wu, 0) @ wd)


def test_sigmoid_gate_is_named_glu():
    with pytest.raises(CheckFailed, match="that is GLU"):
        grade.check_swiglu_ffn(lambda x, wg, wu, wd: ((1 / (1 + np.exp(-(x @ wg)))) * (x @ wu)) @ wd)


def test_a_crash_is_reported_not_raised():
    with pytest.raises(CheckFailed, match="raised ZeroDivisionError"):
        grade.check_swiglu_ffn(lambda *args: 1 / 0)
