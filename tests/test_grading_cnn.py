import numpy as np
import pytest

from tinysora import cnn
from tinysora.grading import CheckFailed
from tinysora.grading import cnn as grade


def depthwise_by_loops(x, weight):
    return np.stack([cnn.conv2d(x[:, c:c + 1], weight[c][None, None]) for c in range(x.shape[1])], axis=1)[:, :, 0]


def input_grad_by_flip(grad_out, weight):
    k = weight.shape[2]
    flipped = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))   # (C_in, C_out, k, k)
    return cnn.conv2d(grad_out, flipped, padding=k - 1)


def test_right_answers_pass():
    grade.check_depthwise_conv2d(grade.reference_depthwise_conv2d)
    grade.check_depthwise_conv2d(depthwise_by_loops)
    grade.check_conv2d_input_grad(grade.reference_conv2d_input_grad)
    grade.check_conv2d_input_grad(input_grad_by_flip)


def test_not_written_yet_is_reported():
    def stub(*args):
        raise NotImplementedError()

    for check in (grade.check_depthwise_conv2d, grade.check_conv2d_input_grad):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


def test_ordinary_convolution_is_not_depthwise():
    def ordinary(x, weight):
        return cnn.conv2d(x, np.repeat(weight[None], x.shape[1], axis=0))

    with pytest.raises(CheckFailed, match="sums over the input channels"):
        grade.check_depthwise_conv2d(ordinary)


def test_depthwise_that_merges_channels_is_a_shape_error():
    with pytest.raises(CheckFailed, match="one output channel per input channel"):
        grade.check_depthwise_conv2d(lambda x, w: depthwise_by_loops(x, w).sum(1, keepdims=True))


def test_input_grad_without_the_flip_is_named():
    def unflipped(grad_out, weight):
        return cnn.conv2d(grad_out, np.ascontiguousarray(weight.transpose(1, 0, 2, 3)), padding=weight.shape[2] - 1)

    with pytest.raises(CheckFailed, match="flipped in both directions"):
        grade.check_conv2d_input_grad(unflipped)


def test_input_grad_of_the_wrong_size_is_a_shape_error():
    def same_size(grad_out, weight):
        k = weight.shape[2]
        h, w = grad_out.shape[2:]
        return input_grad_by_flip(grad_out, weight)[:, :, k // 2:k // 2 + h, k // 2:k // 2 + w]

    with pytest.raises(CheckFailed, match="returned shape"):
        grade.check_conv2d_input_grad(same_size)
