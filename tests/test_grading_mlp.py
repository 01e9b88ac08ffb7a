import numpy as np
import pytest

from tinysora.grading import CheckFailed
from tinysora.grading import mlp as grade


def test_right_answers_pass():
    grade.check_softmax(grade.reference_softmax)
    grade.check_linear_torch_layout(grade.reference_linear_torch_layout)
    grade.check_ffn(grade.reference_ffn)


def test_unstable_softmax_is_told_to_subtract_the_max():
    def naive(z):
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)

    with pytest.raises(CheckFailed, match="subtract"):
        grade.check_softmax(naive)


def test_softmax_over_the_wrong_axis_is_caught():
    with pytest.raises(CheckFailed, match="softmax"):
        grade.check_softmax(lambda z: np.exp(z) / np.exp(z).sum(axis=0, keepdims=True))


def test_linear_without_transpose_is_a_shape_error():
    with pytest.raises(CheckFailed, match="linear raised ValueError|shape"):
        grade.check_linear_torch_layout(lambda x, w, b: x @ w + b)


def test_ffn_without_activation_is_caught():
    with pytest.raises(CheckFailed, match="ffn is off by"):
        grade.check_ffn(lambda x, wu, bu, wd, bd: (x @ wu + bu) @ wd + bd)
